"""What a refused or misconfigured Kafka client is told (streams.kafka.probe_broker, the
preflight of every command), and secrets from files (gridpulse.settings), without a broker: the
TLS refusals against a real TLS listener in this process with certificates made by
scripts/make_certs.sh; a refused SCRAM password needs the real broker
(tests/integration/test_secured_stack.py)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from pydantic import SecretStr

from gridpulse.cli import kafka_preflight, settings_summary
from gridpulse.settings import SecretFileError, Settings
from streams.kafka import (
    EXIT_KAFKA_ACCESS,
    KafkaAccessError,
    KafkaUnreachableError,
    check_broker,
    probe_broker,
)

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-Pa55:w/rd@x"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tls")
    subprocess.run([str(ROOT / "scripts" / "make_certs.sh"), str(out)], check=True, timeout=60)
    return out


@asynccontextmanager
async def tls_listener(certs: Path, host: str = "127.0.0.1") -> AsyncIterator[int]:
    """A TLS server with the broker's certificate that closes every connection after the
    handshake: enough for the client's certificate checks, which come first."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs / "broker.crt", certs / "broker.key")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handle, host, 0, ssl=ctx)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def secured(bootstrap: str, **kw: object) -> Settings:
    base: dict[str, object] = {
        "kafka_bootstrap": bootstrap,
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "gridpulse",
        "kafka_sasl_password": SecretStr(SECRET),
    }
    return Settings().model_copy(update=base | kw)


async def test_a_certificate_from_another_ca_is_refused_naming_the_ca_file(certs: Path) -> None:
    async with tls_listener(certs) as port:
        settings = secured(f"127.0.0.1:{port}", kafka_ssl_cafile=str(certs / "other-ca.crt"))
        with pytest.raises(KafkaAccessError) as refused:
            await probe_broker(settings, timeout_s=5)
    text = str(refused.value)
    assert text.startswith(
        f"the broker's certificate at 127.0.0.1:{port} is not signed by a CA in "
        f"GRIDPULSE_KAFKA_SSL_CAFILE={certs / 'other-ca.crt'}: certificate verify failed: "
    )
    assert SECRET not in text
    # check_broker, the commands' preflight, passes the refusal on
    with pytest.raises(KafkaAccessError):
        async with tls_listener(certs) as port:
            await check_broker(secured(f"127.0.0.1:{port}", kafka_ssl_cafile=str(certs / "other-ca.crt")), 5)


async def test_without_a_ca_file_the_system_trust_store_is_named(certs: Path) -> None:
    async with tls_listener(certs) as port:
        with pytest.raises(KafkaAccessError, match=r"not signed by a CA in the system's trust store"):
            await probe_broker(secured(f"127.0.0.1:{port}"), timeout_s=5)


async def test_an_address_outside_the_certificate_is_refused_as_such(certs: Path) -> None:
    # the certificate names 127.0.0.1, localhost and kafka; 127.0.0.2 is loopback too, not in it
    async with tls_listener(certs, host="127.0.0.2") as port:
        settings = secured(f"127.0.0.2:{port}", kafka_ssl_cafile=str(certs / "ca.crt"))
        with pytest.raises(KafkaAccessError, match=r"is not valid for that name or address"):
            await probe_broker(settings, timeout_s=5)


async def test_the_right_ca_passes_the_handshake_and_a_closed_port_is_only_unreachable(certs: Path) -> None:
    # with the stack's own CA the handshake succeeds; the listener then hangs up (no Kafka behind
    # it): not a refusal of the client, so only "unreachable"
    async with tls_listener(certs) as port:
        settings = secured(f"127.0.0.1:{port}", kafka_ssl_cafile=str(certs / "ca.crt"))
        with pytest.raises(KafkaUnreachableError):
            await probe_broker(settings, timeout_s=5)
    closed = Settings().model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"})
    with pytest.raises(KafkaUnreachableError, match=r"ConnectionRefusedError"):
        await probe_broker(closed, timeout_s=5)
    await check_broker(closed, timeout_s=5)  # logged only: each service waits its own way


def test_a_missing_password_file_is_a_clear_error_naming_the_setting(tmp_path: Path) -> None:
    missing = tmp_path / "nope.password"
    settings = Settings().model_copy(
        update={"kafka_sasl_mechanism": "SCRAM-SHA-512", "kafka_sasl_password_file": str(missing)}
    )
    with pytest.raises(SecretFileError) as err:
        settings.aiokafka_security()
    assert str(err.value) == (
        f"GRIDPULSE_KAFKA_SASL_PASSWORD_FILE={missing}: cannot read the file: No such file or directory"
    )
    empty = tmp_path / "empty.password"
    empty.write_text("\n")
    with pytest.raises(SecretFileError, match=r"GRIDPULSE_PG_PASSWORD_FILE=.*: the file is empty"):
        Settings().model_copy(update={"pg_password_file": str(empty)}).pg_connect_dsn()
    both = settings.model_copy(update={"kafka_sasl_password": SecretStr(SECRET)})
    with pytest.raises(SecretFileError, match=r"both .* are set: set one"):
        both.kafka_password()


def test_the_preflight_exits_78_with_one_line_and_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings().model_copy(
        update={
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_password_file": str(tmp_path / "absent"),
        }
    )
    assert kafka_preflight("worker", settings) == EXIT_KAFKA_ACCESS
    err = capsys.readouterr().err
    assert err.startswith("gridpulse worker: Kafka refused this client: GRIDPULSE_KAFKA_SASL_PASSWORD_FILE=")
    assert err.count("\n") == 1


def test_passwords_from_files_are_read_at_use_and_never_in_the_summary(tmp_path: Path) -> None:
    kafka_pw = tmp_path / "kafka.password"
    kafka_pw.write_text(SECRET + "\n")
    pg_pw = tmp_path / "pg.password"
    pg_pw.write_text(SECRET + "\n")
    settings = Settings().model_copy(
        update={
            "kafka_security_protocol": "SASL_PLAINTEXT",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": "gridpulse",
            "kafka_sasl_password_file": str(kafka_pw),
            "pg_dsn": SecretStr("postgresql://gridpulse@db.example:5433/gridpulse"),
            "pg_password_file": str(pg_pw),
            "redis_url": f"redis://:{SECRET}@cache.example:6379/0",
        }
    )
    assert settings.aiokafka_security()["sasl_plain_password"] == SECRET
    # the DSN asyncpg gets: the password percent-encoded (':' '/' '@' in it)
    assert settings.pg_connect_dsn() == (
        "postgresql://gridpulse:s3cr3t-Pa55%3Aw%2Frd%40x@db.example:5433/gridpulse"
    )
    kafka_pw.write_text("rotated\n")
    assert settings.kafka_password() == "rotated"  # read at each use
    summary = settings_summary(settings)
    assert SECRET not in summary and "rotated" not in summary
    assert "redis=redis://:***@cache.example:6379/0" in summary
    assert "pg=postgresql://gridpulse@db.example:5433/gridpulse" in summary
    assert "kafka_security=SASL_PLAINTEXT/SCRAM-SHA-512 user='gridpulse'" in summary
    # the files' passwords are never held by the settings object (read at use only)
    no_url_password = settings.model_copy(update={"redis_url": "redis://cache.example:6379/0"})
    assert SECRET not in repr(no_url_password) and SECRET not in str(no_url_password.model_dump())
