"""What counts as "that resource is gone" for verify and teardown alike."""

from __future__ import annotations

from botocore.exceptions import ClientError

from smgitops.aws import is_not_found


def _error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "DescribeEndpoint")


def test_sagemaker_absence_is_a_validation_exception_saying_so() -> None:
    assert is_not_found(_error("ValidationException", 'Could not find endpoint "smgitops-dev".'))
    assert is_not_found(_error("ValidationException", "Endpoint smgitops-dev does not exist."))


def test_other_errors_are_never_read_as_absence() -> None:
    # an endpoint that cannot be read is not an endpoint that is gone: teardown and verify must fail, not skip it
    assert not is_not_found(_error("ThrottlingException", "Rate exceeded; endpoint does not exist yet?"))
    assert not is_not_found(_error("AccessDeniedException", "Could not find credentials"))
    assert not is_not_found(_error("ValidationException", "Cannot update in-progress endpoint"))
