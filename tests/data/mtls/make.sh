#!/bin/sh
# Regenerates the mTLS test fixtures (see README.md). Run from this directory.
set -eu
DAYS=36500
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ext() { printf '%s\n' "$@" > ext.cnf; }

key ca.key
openssl req -x509 -new -key ca.key -sha256 -days $DAYS -subj "/O=auth0-server tests/CN=auth0-server test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem

key server.key
openssl req -new -key server.key -subj "/O=auth0-server tests/CN=localhost" -out server.csr
ext "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
  "subjectAltName=IP:127.0.0.1,DNS:localhost"
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days $DAYS -sha256 -extfile ext.cnf -out server.pem

ext "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth"
key client.key
openssl req -new -key client.key -subj "/O=auth0-server tests/CN=auth0-server-test-client" -out client.csr
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days $DAYS -sha256 -extfile ext.cnf -out client.pem

# Another CA, and a client certificate with the same subject signed by it.
key other_ca.key
openssl req -x509 -new -key other_ca.key -sha256 -days $DAYS -subj "/O=auth0-server tests/CN=another CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out other_ca.pem
key wrong_client.key
openssl req -new -key wrong_client.key -subj "/O=auth0-server tests/CN=auth0-server-test-client" -out wrong_client.csr
openssl x509 -req -in wrong_client.csr -CA other_ca.pem -CAkey other_ca.key -CAcreateserial -days $DAYS -sha256 -extfile ext.cnf -out wrong_client.pem

key self_signed.key
openssl req -x509 -new -key self_signed.key -sha256 -days $DAYS -subj "/O=auth0-server tests/CN=auth0-server-self-signed-client" \
  -addext "basicConstraints=critical,CA:FALSE" -addext "keyUsage=critical,digitalSignature" \
  -addext "extendedKeyUsage=clientAuth" -out self_signed.pem

# PKCS#8 keys (-----BEGIN PRIVATE KEY-----), as every TLS stack reads them.
for k in ca server client other_ca wrong_client self_signed; do
  openssl pkcs8 -topk8 -nocrypt -in $k.key -out $k.key.p8 && mv $k.key.p8 $k.key
done
rm -f ext.cnf *.csr *.srl other_ca.key
