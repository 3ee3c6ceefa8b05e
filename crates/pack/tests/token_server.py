"""A registry token server on loopback, as distribution's token specs describe it.

It answers the OAuth2 POST of docs/spec/auth/oauth.md (`grant_type=refresh_token`; the
`password` grant and the GET of token.md are not needed here) with an ES256 JWT as
docs/spec/auth/jwt.md has it: `kid` in libtrust's fingerprint format, `x5c` with a
self-signed certificate that the registry trusts as its `rootcertbundle`, and the claims
`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti` and `access`.

Usage: token_server.py CERT_PEM ISSUER SERVICE REFRESH_TOKEN

Writes the certificate to CERT_PEM, then prints `listening PORT` and serves on 127.0.0.1 until
killed. Each token request is printed as one line, `grant GRANT_TYPE client_id=... service=...
scope=... token=good|bad`, so a test can tell what the client sent without the secret.
"""

import base64
import datetime
import hashlib
import json
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# distribution's minimum: "a token should never be returned with less than 60 seconds to live"
EXPIRES_IN = 300


def libtrust_key_id(public_key):
    """SHA-256 of the DER public key, cut to 240 bits, base32 in 12 groups of 4 (jwt.md)."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(b32[i : i + 4] for i in range(0, len(b32), 4))


def self_signed(key):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "skiff test token signer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def access_of(scope):
    """`repository:NAME:pull,push repository:OTHER:pull` -> jwt.md's `access` entries."""
    access = []
    for item in scope.split():
        kind, _, rest = item.partition(":")
        name, _, actions = rest.rpartition(":")
        if kind and name:
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
    return access


def main():
    cert_path, issuer, service, refresh_token = sys.argv[1:5]
    key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed(key)
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    headers = {
        "kid": libtrust_key_id(key.public_key()),
        "x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()],
    }

    class Handler(BaseHTTPRequestHandler):
        def answer(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            field = lambda k: form.get(k, [""])[0]
            good = field("refresh_token") == refresh_token
            print(
                f"grant {field('grant_type')} client_id={field('client_id')} "
                f"service={field('service')} scope={field('scope')} "
                f"token={'good' if good else 'bad'} "
                f"content_type={self.headers.get('Content-Type')}",
                flush=True,
            )
            if self.headers.get("Content-Type") != "application/x-www-form-urlencoded":
                return self.answer(400, {"error": "invalid_request"})
            if field("grant_type") != "refresh_token":
                return self.answer(400, {"error": "unsupported_grant_type"})
            # client_id and service are required (oauth.md)
            if not field("client_id") or field("service") != service:
                return self.answer(400, {"error": "invalid_request"})
            if not good:
                return self.answer(
                    400,
                    {"error": "invalid_grant", "error_description": "refresh token is invalid"},
                )
            scope = field("scope")
            now = int(time.time())
            claims = {
                "iss": issuer,
                "sub": "skiff-test-user",
                "aud": service,
                "exp": now + EXPIRES_IN,
                "nbf": now,
                "iat": now,
                "jti": uuid.uuid4().hex,
                "access": access_of(scope),
            }
            token = jwt.encode(claims, key, algorithm="ES256", headers=headers)
            self.answer(
                200,
                {
                    "access_token": token,
                    "scope": scope,
                    "expires_in": EXPIRES_IN,
                    "issued_at": datetime.datetime.fromtimestamp(
                        now, datetime.timezone.utc
                    ).strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            )

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
