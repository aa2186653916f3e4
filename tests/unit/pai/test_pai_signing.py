"""ACS3-HMAC-SHA256: the documented test vector, the canonical pieces, and a randomised
cross-check against the official SDK's own signer."""

from __future__ import annotations

import hashlib
import string
from types import SimpleNamespace
from urllib.parse import quote

from alibabacloud_tea_openapi.utils import Utils as SdkUtils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pai_operator.pai.signing import (
    EMPTY_BODY_SHA256,
    canonical_headers,
    canonical_query,
    canonical_request,
    sign_request,
)

VECTOR_HEADERS = {
    "host": "aiworkspace.cn-hangzhou.aliyuncs.com",
    "x-acs-version": "2021-02-04",
    "x-acs-action": "ListModelVersions",
    "user-agent": "test-agent",
    "x-acs-date": "2024-01-01T00:00:00Z",
    "x-acs-signature-nonce": "0123456789abcdef0123456789abcdef",
    "accept": "application/json",
}
VECTOR_AUTHORIZATION = (
    "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=accept;host;user-agent;x-acs-action;"
    "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
    "Signature=397255c26ec78d8beb9c8c97429a11fe3e069f694cf3e224233a7132a79e4178"
)
CROSS_CHECK_EXAMPLES = 300


def test_reproduces_the_documented_test_vector() -> None:
    query = {"PageNumber": "1", "PageSize": "10", "Label": "a b"}
    signed = sign_request(
        "GET", "/api/v1/models/model-abc/versions", query, VECTOR_HEADERS, b"", "testid", "testsecret"
    )
    assert canonical_query(query) == "Label=a%20b&PageNumber=1&PageSize=10"
    assert signed["x-acs-content-sha256"] == EMPTY_BODY_SHA256
    assert signed["Authorization"] == VECTOR_AUTHORIZATION


def test_sign_request_keeps_the_given_headers_and_replaces_a_stale_signature() -> None:
    headers = {**VECTOR_HEADERS, "Authorization": "old", "X-Acs-Content-Sha256": "stale"}
    signed = sign_request("POST", "/p", {}, headers, b'{"a":1}', "id", "secret")
    assert signed["x-acs-content-sha256"] == hashlib.sha256(b'{"a":1}').hexdigest()
    assert "X-Acs-Content-Sha256" not in signed
    assert signed["Authorization"].startswith("ACS3-HMAC-SHA256 Credential=id,")
    assert {k: v for k, v in signed.items() if k in VECTOR_HEADERS} == VECTOR_HEADERS


def test_canonical_query_is_rfc3986() -> None:
    query = {"B": "x+y/z~", "A": "é & =", "C": ""}
    assert canonical_query(query) == "A=%C3%A9%20%26%20%3D&B=x%2By%2Fz~&C="
    assert canonical_query({}) == ""


def test_canonical_headers_lowercase_trim_sort_and_skip_unsignable() -> None:
    block, names = canonical_headers(
        {"X-Acs-Date": " 2024 ", "Host": "h", "Content-Length": "3", "Authorization": "x"}
    )
    assert block == "host:h\nx-acs-date:2024\n"
    assert names == "host;x-acs-date"


def test_canonical_request_layout() -> None:
    canonical = canonical_request("get", "", {"Q": "1"}, {"host": "h"}, "abc")
    assert canonical == "GET\n/\nQ=1\nhost:h\n\nhost\nabc"


# --- cross-check with the SDK -----------------------------------------------------------------

reserved = st.sampled_from(list(" !#$&'()*+,/:;=?@[]~%-._\"<>\\^`{|}"))
awkward_text = st.text(alphabet=st.one_of(reserved, st.characters(exclude_categories=["Cs"])), max_size=24)
header_value = st.text(
    alphabet=st.one_of(st.sampled_from(list(" \t,;:=")), st.characters(exclude_categories=["Cc", "Cs"])),
    max_size=24,
)


@st.composite
def signing_cases(draw: st.DrawFn) -> SimpleNamespace:
    segments = draw(st.lists(awkward_text.filter(bool), min_size=1, max_size=5))
    path = "/" + "/".join(quote(segment, safe="") for segment in segments)
    query = draw(
        st.dictionaries(st.text(string.ascii_letters, min_size=1, max_size=12), awkward_text, max_size=6)
    )
    headers = {
        draw(st.sampled_from(["host", "Host", "HOST"])): draw(header_value.filter(str.strip)),
        "x-acs-action": draw(st.sampled_from(["GetModelVersion", "CreateModelVersion"])),
        "x-acs-version": "2021-02-04",
        "x-acs-date": draw(header_value),
        "x-acs-signature-nonce": draw(st.text(string.hexdigits, min_size=1, max_size=32)),
    }
    extra = draw(st.dictionaries(st.text(string.ascii_letters + "-", min_size=1, max_size=10), header_value))
    headers.update({f"x-extra-{name}": value for name, value in extra.items()})
    if draw(st.booleans()):
        headers["x-acs-security-token"] = draw(st.text(min_size=1, max_size=40))
    body = draw(st.one_of(st.binary(max_size=256), awkward_text.map(lambda text: text.encode("utf-8"))))
    return SimpleNamespace(
        method=draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"])),
        path=path,
        query=query,
        headers=headers,
        body=body,
        access_key_id=draw(st.text(string.ascii_letters + string.digits, min_size=1, max_size=24)),
        secret=draw(st.text(min_size=1, max_size=40)),
    )


def test_matches_the_official_sdk_signer_on_random_requests() -> None:
    checked = 0

    @settings(
        max_examples=CROSS_CHECK_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(case=signing_cases())
    def check(case: SimpleNamespace) -> None:
        nonlocal checked
        ours = sign_request(
            case.method, case.path, case.query, case.headers, case.body, case.access_key_id, case.secret
        )
        payload_hash = hashlib.sha256(case.body).hexdigest()
        sdk_request = SimpleNamespace(
            method=case.method,
            pathname=case.path,
            query=case.query,
            headers={**case.headers, "x-acs-content-sha256": payload_hash},
        )
        expected = SdkUtils.get_authorization(
            sdk_request, "ACS3-HMAC-SHA256", payload_hash, case.access_key_id, case.secret
        )
        assert ours["Authorization"] == expected
        checked += 1

    check()
    assert checked >= CROSS_CHECK_EXAMPLES
