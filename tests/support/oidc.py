"""An OIDC issuer for tests: an RSA key pair, its JSON Web Key Set, and RS256-signed JWTs.

Integration tests take tokens and keys from the real kube-apiserver (TokenRequest and
/openid/v1/jwks); this signer serves contract tests, and tokens no API server would issue
(already expired) signed with the API server's own key.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.hashes import SHA256

AUDIENCE = "sts.aliyuncs.com"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class Signer:
    """Signs JWTs with one RSA key; `jwks()` is what the issuer would publish."""

    def __init__(self, kid: str = "test-key", key: rsa.RSAPrivateKey | None = None) -> None:
        self.kid = kid
        self.key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @classmethod
    def from_pem(cls, path: Path, kid: str | None = None) -> Signer:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return cls(kid or "", key)

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": self.kid,
                    "n": _uint(numbers.n),
                    "e": _uint(numbers.e),
                }
            ]
        }

    def write_jwks(self, path: Path) -> Path:
        path.write_text(json.dumps(self.jwks()))
        return path

    def token(self, claims: dict[str, Any], *, alg: str = "RS256", kid: str | None = None) -> str:
        header = {"alg": alg, "typ": "JWT", **({"kid": kid or self.kid} if (kid or self.kid) else {})}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), SHA256())
        return f"{signing_input}.{b64url(signature)}"

    def service_account_token(
        self,
        issuer: str,
        namespace: str,
        name: str,
        *,
        audience: str = AUDIENCE,
        lifetime: float = 600,
        issued_at: float | None = None,
    ) -> str:
        """Claims shaped as kube-apiserver's for a ServiceAccount (the parts RAM reads)."""
        now = int(issued_at if issued_at is not None else time.time())
        return self.token(
            {
                "aud": [audience],
                "exp": now + int(lifetime),
                "iat": now,
                "nbf": now,
                "iss": issuer,
                "sub": f"system:serviceaccount:{namespace}:{name}",
                "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": "0"}},
            }
        )


def unverified_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def unverified_header(token: str) -> dict[str, Any]:
    header = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))))
