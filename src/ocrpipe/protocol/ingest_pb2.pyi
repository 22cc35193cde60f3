from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitRequest(_message.Message):
    __slots__ = ("image", "filename", "device", "exam_id", "idempotency_key")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    EXAM_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    filename: str
    device: str
    exam_id: str
    idempotency_key: str
    def __init__(self, image: _Optional[bytes] = ..., filename: _Optional[str] = ..., device: _Optional[str] = ..., exam_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class SubmitReply(_message.Message):
    __slots__ = ("job_id", "created", "status")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    created: bool
    status: str
    def __init__(self, job_id: _Optional[str] = ..., created: _Optional[bool] = ..., status: _Optional[str] = ...) -> None: ...

class GetResultRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("job_ids", "since_unix_ms")
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    SINCE_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    since_unix_ms: int
    def __init__(self, job_ids: _Optional[_Iterable[str]] = ..., since_unix_ms: _Optional[int] = ...) -> None: ...

class FieldValue(_message.Message):
    __slots__ = ("name", "value", "unit", "valid", "confidence", "raw", "issues", "type")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    VALID_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    ISSUES_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    unit: str
    valid: bool
    confidence: float
    raw: str
    issues: _containers.RepeatedScalarFieldContainer[str]
    type: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ..., unit: _Optional[str] = ..., valid: _Optional[bool] = ..., confidence: _Optional[float] = ..., raw: _Optional[str] = ..., issues: _Optional[_Iterable[str]] = ..., type: _Optional[str] = ...) -> None: ...

class JobResult(_message.Message):
    __slots__ = ("job_id", "status", "mode", "template", "device", "exam_id", "fields", "valid", "error_code", "error_message", "result_json", "finished_unix_ms", "reason", "submitted_unix_ms")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    EXAM_ID_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    VALID_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    FINISHED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    status: str
    mode: str
    template: str
    device: str
    exam_id: str
    fields: _containers.RepeatedCompositeFieldContainer[FieldValue]
    valid: bool
    error_code: str
    error_message: str
    result_json: str
    finished_unix_ms: int
    reason: str
    submitted_unix_ms: int
    def __init__(self, job_id: _Optional[str] = ..., status: _Optional[str] = ..., mode: _Optional[str] = ..., template: _Optional[str] = ..., device: _Optional[str] = ..., exam_id: _Optional[str] = ..., fields: _Optional[_Iterable[_Union[FieldValue, _Mapping]]] = ..., valid: _Optional[bool] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ..., result_json: _Optional[str] = ..., finished_unix_ms: _Optional[int] = ..., reason: _Optional[str] = ..., submitted_unix_ms: _Optional[int] = ...) -> None: ...
