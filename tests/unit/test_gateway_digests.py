"""RFC 3230 Want-Digest parsing and Digest formatting (dynafed_client.gateway.digests)."""
from __future__ import annotations

import base64
import hashlib
import zlib

import google_crc32c

from dynafed_client.gateway.digests import algorithms_for, format_digest, parse_want_digest

DATA = b"Wikipedia"
HEX = {
    "adler32": f"{zlib.adler32(DATA):08x}",
    "crc32c": google_crc32c.Checksum(DATA).digest().hex(),
    "md5": hashlib.md5(DATA).hexdigest(),
    "sha1": hashlib.sha1(DATA).hexdigest(),
    "sha256": hashlib.sha256(DATA).hexdigest(),
    "sha512": hashlib.sha512(DATA).hexdigest(),
}


def b64(name: str) -> str:
    return base64.b64encode(hashlib.new(name, DATA).digest()).decode()


def tokens(header: str) -> list[tuple[str, str, float]]:
    return [(w.token, w.algorithm, w.q) for w in parse_want_digest([header])]


def test_known_value() -> None:
    assert HEX["adler32"] == "11e60398"  # PROTOCOLS.md §2


def test_any_case_and_several() -> None:
    assert tokens("ADLER32") == [("adler32", "adler32", 1.0)]
    assert tokens("MD5, adler32,CRC32c") == [("md5", "md5", 1.0), ("adler32", "adler32", 1.0),
                                            ("crc32c", "crc32c", 1.0)]


def test_q_values_order_and_zero() -> None:
    assert tokens("adler32;q=0.3, md5;q=1, sha-256;q=0.5, crc32c;q=0") == [
        ("md5", "md5", 1.0), ("sha-256", "sha256", 0.5), ("adler32", "adler32", 0.3)]
    # malformed q counts as 1; whitespace around parameters tolerated
    assert tokens("md5 ; q = 0.2, adler32;q=abc") == [("adler32", "adler32", 1.0), ("md5", "md5", 0.2)]


def test_unknown_tokens_are_dropped() -> None:
    assert tokens("UNIXcksum, crc32, foo, sha-3") == []
    assert tokens("UNIXcksum, adler32") == [("adler32", "adler32", 1.0)]


def test_several_header_lines_and_duplicates() -> None:
    wanted = parse_want_digest(["adler32", "md5, ADLER32;q=0.1"])
    assert [w.token for w in wanted] == ["adler32", "md5"]


def test_iana_names() -> None:
    assert [w.algorithm for w in parse_want_digest(["SHA, SHA-256, SHA-512"])] == ["sha1", "sha256", "sha512"]


def test_format_hex_and_base64_without_spaces() -> None:
    wanted = parse_want_digest(["ADLER32, MD5, CRC32C, SHA-256, sha-512, SHA"])
    value = format_digest(wanted, HEX)
    assert value == ",".join([
        f"adler32={HEX['adler32']}", f"md5={b64('md5')}", f"crc32c={HEX['crc32c']}",
        f"sha-256={b64('sha256')}", f"sha-512={b64('sha512')}", f"sha={b64('sha1')}"])
    assert " " not in value


def test_answers_under_the_asked_name_only() -> None:
    wanted = parse_want_digest(["sha256"])
    assert format_digest(wanted, HEX) == f"sha256={b64('sha256')}"
    # an algorithm the function did not return is absent, never another one
    assert format_digest(parse_want_digest(["sha-512"]), {"sha256": HEX["sha256"]}) is None


def test_adler32_is_zero_padded_to_8() -> None:
    wanted = parse_want_digest(["adler32"])
    assert format_digest(wanted, {"adler32": "1"}) == "adler32=00000001"
    assert format_digest(wanted, {"adler32": "000000000abc"}) == "adler32=00000abc"


def test_invalid_hex_from_upstream_is_left_out() -> None:
    assert format_digest(parse_want_digest(["md5"]), {"md5": "zz"}) is None


def test_algorithms_for_deduplicates() -> None:
    assert algorithms_for(parse_want_digest(["sha, sha1, SHA-1, md5"])) == ["sha1", "md5"]
