"""dashboard.auth: password hashes, signed session tokens (expiry, tampering), users, roles."""

from __future__ import annotations

import json

import pytest

from dashboard.auth import (
    ITERATIONS,
    SessionSigner,
    User,
    UsersError,
    authenticate,
    hash_password,
    load_users,
    may_acknowledge,
    parse_users,
    verify_password,
    visible_alerts,
)

HASH = hash_password("s3cret!", iterations=200_000)


def test_a_password_hash_verifies_its_password_only() -> None:
    scheme, rounds, salt, digest = HASH.split("$")
    assert scheme == "pbkdf2_sha256" and int(rounds) == 200_000 and salt and digest
    assert verify_password("s3cret!", HASH)
    assert not verify_password("s3cret", HASH)
    assert not verify_password("", HASH)
    assert hash_password("s3cret!") != hash_password("s3cret!")  # salted
    assert int(hash_password("x").split("$")[1]) == ITERATIONS >= 200_000


@pytest.mark.parametrize(
    "encoded",
    [
        HASH.replace("pbkdf2_sha256", "md5"),
        HASH.replace("$200000$", "$1000$"),  # too few rounds is refused, not checked
        "pbkdf2_sha256$200000$only-three",
        "",
    ],
)
def test_a_malformed_or_weak_hash_verifies_nothing(encoded: str) -> None:
    assert not verify_password("s3cret!", encoded)


def test_fewer_than_200000_iterations_cannot_be_made() -> None:
    with pytest.raises(ValueError):
        hash_password("x", iterations=1000)


def test_a_session_token_names_its_user_until_it_expires() -> None:
    signer = SessionSigner(b"k" * 32)
    token = signer.sign("li", expires_at=1_000.0)
    assert signer.verify(token, now=999.0) == "li"
    assert signer.verify(token, now=1_000.0) is None  # expired at its expiry
    assert signer.verify(token, now=5_000.0) is None


def test_a_tampered_or_foreign_token_is_refused() -> None:
    signer = SessionSigner(b"k" * 32)
    token = signer.sign("li", expires_at=1_000.0)
    user_b64, expiry, mac = token.split(".")
    other_user = signer.sign("wang", expires_at=1_000.0).split(".")[0]
    assert signer.verify(f"{other_user}.{expiry}.{mac}", now=0) is None  # another user, same MAC
    assert signer.verify(f"{user_b64}.99999.{mac}", now=0) is None  # a longer expiry
    assert signer.verify(f"{user_b64}.{expiry}.{mac[:-2]}AA", now=0) is None
    assert SessionSigner(b"x" * 32).verify(token, now=0) is None  # another secret
    assert signer.verify("garbage", now=0) is None
    assert signer.verify("a.b.c", now=0) is None


def test_users_are_parsed_from_json_and_a_file_and_checked(tmp_path) -> None:
    path = tmp_path / "users.json"
    path.write_text(json.dumps([{"user": "sup", "password_hash": HASH, "role": "supervisor"}]))
    users = load_users(
        [{"user": "li", "password_hash": HASH, "role": "manager", "manager_id": "M01"}], str(path)
    )
    assert users["li"] == User("li", "manager", "M01", HASH)
    assert users["sup"].role == "supervisor" and users["sup"].ack_name == "sup"
    assert users["li"].ack_name == "M01"
    for bad in (
        [{"user": "x", "password_hash": HASH, "role": "admin"}],
        [{"user": "x", "password_hash": "plain", "role": "viewer"}],
        [{"user": "x", "password_hash": HASH, "role": "manager"}],  # no manager_id
        [{"password_hash": HASH, "role": "viewer"}],
        [{"user": "x", "password_hash": HASH, "role": "viewer"}] * 2,
    ):
        with pytest.raises(UsersError):
            parse_users(bad)
    path.write_text("{}")
    with pytest.raises(UsersError):
        load_users(None, str(path))


def test_authenticate_answers_the_same_for_an_unknown_user_and_a_wrong_password() -> None:
    users = parse_users([{"user": "li", "password_hash": HASH, "role": "viewer"}])
    assert authenticate(users, "li", "s3cret!") == users["li"]
    assert authenticate(users, "li", "wrong") is None
    assert authenticate(users, "nobody", "s3cret!") is None


def test_roles_filter_and_acknowledge_alerts() -> None:
    viewer = User("v", "viewer", None, HASH)
    m01 = User("li", "manager", "M01", HASH)
    sup = User("s", "supervisor", None, HASH)
    rows = [
        {"alert_id": "a", "manager_ids": ["M01"]},
        {"alert_id": "b", "manager_ids": ["M02", "M01"]},
        {"alert_id": "c", "manager_ids": ["M02"]},
        {"alert_id": "d", "manager_ids": []},
    ]
    assert [r["alert_id"] for r in visible_alerts(m01, rows)] == ["a", "b"]
    assert [r["alert_id"] for r in visible_alerts(viewer, rows)] == ["a", "b", "c", "d"]
    assert [r["alert_id"] for r in visible_alerts(sup, rows)] == ["a", "b", "c", "d"]
    assert may_acknowledge(m01, ["M02", "M01"]) and not may_acknowledge(m01, ["M02"])
    assert not may_acknowledge(viewer, ["M01"])
    assert may_acknowledge(sup, []) and may_acknowledge(sup, ["M02"])
