"""The receiver's own Standard Webhooks verifier, checked against the spec's test vector."""

from __future__ import annotations

from tests.notifications.receiver import signatures_valid_under, verify

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = "1614265330"
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_spec_vector_verifies():
    assert verify(SECRET, MSG_ID, TIMESTAMP, BODY, SIGNATURE)


def test_one_of_several_signatures_suffices():
    header = f"v1,Zm9vYmFy {SIGNATURE} v2,whatever"
    assert signatures_valid_under(SECRET, MSG_ID, TIMESTAMP, BODY, header) == [SIGNATURE]


def test_tampering_is_detected():
    assert not verify(SECRET, MSG_ID, TIMESTAMP, BODY + b" ", SIGNATURE)
    assert not verify(SECRET, MSG_ID, "1614265331", BODY, SIGNATURE)
    assert not verify(SECRET, "msg_other", TIMESTAMP, BODY, SIGNATURE)
    assert not verify("whsec_" + "A" * 32, MSG_ID, TIMESTAMP, BODY, SIGNATURE)
    assert not verify(SECRET, MSG_ID, TIMESTAMP, BODY, SIGNATURE.replace("v1,", "v2,"))
    assert not verify(SECRET, MSG_ID, TIMESTAMP, BODY, "")
