#!/usr/bin/env bash
# Certificates for the secured local stack (scripts/stack.sh with GRIDPULSE_STACK_SECURE=1), made
# with openssl:
#
#   scripts/make_certs.sh DIR
#
#   DIR/ca.crt, ca.key             the stack's own CA (ECDSA P-256, 10 years)
#   DIR/broker.crt, broker.key     the broker's certificate, signed by that CA, for
#                                  IP:127.0.0.1, DNS:localhost and DNS:kafka (docker-compose);
#                                  10 years from now (clients under scripts/at_clock.sh's future
#                                  clocks check it against their fake time);
#                                  the key is PKCS#8, unencrypted (the broker reads it as a PEM
#                                  keystore; the file is 0600)
#   DIR/broker-keystore.pem        broker.key + broker.crt, Kafka's PEM keystore (the chain without
#                                  the CA: a client must have it from its own CA file)
#   DIR/other-ca.crt, other-ca.key a second CA that signed nothing the broker has: a client
#                                  trusting only it must be refused (the untrusted-CA test)
#
# Idempotent: what exists is kept (a broker certificate missing a wanted name is remade).
# Keys are 0600, the directory 0700. Nothing secret is printed.
set -euo pipefail
umask 077

DIR=${1:?usage: scripts/make_certs.sh DIR}
SANS="IP:127.0.0.1,DNS:localhost,DNS:kafka"
mkdir -p "$DIR"
chmod 700 "$DIR"

command -v openssl >/dev/null || { echo "make_certs: openssl not found (make setup installs it)" >&2; exit 1; }

log=$DIR/openssl.log
: >"$log"
fail() {
    echo "make_certs: $* (openssl's output: $log)" >&2
    tail -n 20 "$log" >&2
    exit 1
}

new_key() { # file
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.tmp" >>"$log" 2>&1 ||
        fail "could not make the key $1"
    chmod 600 "$1.tmp"
    mv "$1.tmp" "$1"
}

make_ca() { # name subject
    local name=$1 subject=$2
    [[ -s $DIR/$name.crt && -s $DIR/$name.key ]] && return 0
    new_key "$DIR/$name.key"
    openssl req -x509 -new -key "$DIR/$name.key" -sha256 -days 3650 -subj "$subject" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$DIR/$name.crt.tmp" >>"$log" 2>&1 || fail "could not make the CA certificate $name.crt"
    chmod 644 "$DIR/$name.crt.tmp"
    mv "$DIR/$name.crt.tmp" "$DIR/$name.crt"
}

broker_cert_ok() {
    [[ -s $DIR/broker.crt && -s $DIR/broker.key && -s $DIR/broker-keystore.pem ]] || return 1
    openssl verify -CAfile "$DIR/ca.crt" "$DIR/broker.crt" >/dev/null 2>&1 || return 1
    # still valid for a week, and for every name we want
    openssl x509 -in "$DIR/broker.crt" -noout -checkend 604800 >/dev/null 2>&1 || return 1
    local text
    text=$(openssl x509 -in "$DIR/broker.crt" -noout -ext subjectAltName 2>/dev/null) || return 1
    [[ $text == *"IP Address:127.0.0.1"* && $text == *"DNS:localhost"* && $text == *"DNS:kafka"* ]]
}

make_ca ca "/O=gridpulse local stack/CN=gridpulse local CA"
make_ca other-ca "/O=somebody else/CN=an unrelated CA"

if ! broker_cert_ok; then
    new_key "$DIR/broker.key"
    openssl req -new -key "$DIR/broker.key" -subj "/O=gridpulse local stack/CN=localhost" \
        -out "$DIR/broker.csr" >>"$log" 2>&1 || fail "could not make the broker's certificate request"
    printf '%s\n' "subjectAltName=$SANS" "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth,clientAuth" \
        >"$DIR/broker.ext"
    openssl x509 -req -in "$DIR/broker.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial \
        -days 3650 -sha256 -extfile "$DIR/broker.ext" -out "$DIR/broker.crt.tmp" >>"$log" 2>&1 ||
        fail "could not sign the broker's certificate"
    chmod 644 "$DIR/broker.crt.tmp"
    mv "$DIR/broker.crt.tmp" "$DIR/broker.crt"
    cat "$DIR/broker.key" "$DIR/broker.crt" >"$DIR/broker-keystore.pem.tmp"
    chmod 600 "$DIR/broker-keystore.pem.tmp"
    mv "$DIR/broker-keystore.pem.tmp" "$DIR/broker-keystore.pem"
    rm -f "$DIR/broker.csr" "$DIR/broker.ext"
fi
broker_cert_ok || fail "the broker certificate in $DIR does not verify against $DIR/ca.crt"
