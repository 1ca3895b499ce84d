"""TF Serving's ModelService.GetModelStatus without TensorFlow, for the API's readiness probe.

The official stubs (tensorflow-serving-api) import all of TensorFlow: about 4 s and 850 MB in a
process that otherwise never touches a tensor. The API only needs two fields of one call, so it
declares those messages itself, wire-compatible with tensorflow_serving/apis/get_model_status.proto
and model.proto (same field numbers and types), in a private descriptor pool. The worker keeps
the official stubs; a test checks the two encode the same bytes.
"""

from __future__ import annotations

import logging

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

log = logging.getLogger(__name__)

METHOD = "/tensorflow.serving.ModelService/GetModelStatus"
#: ModelVersionStatus.State.AVAILABLE in TF Serving.
AVAILABLE = 30

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "classroom_inference.tfs"


def _build_messages():
    file = descriptor_pb2.FileDescriptorProto(
        name="classroom_inference/model_status.proto", package=_PACKAGE, syntax="proto3"
    )

    def message(name, *fields):
        proto = file.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            field = proto.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name

    one, many = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
    message("Int64Value", ("value", 1, _F.TYPE_INT64, one, ""))
    message(
        "ModelSpec",
        ("name", 1, _F.TYPE_STRING, one, ""),
        ("version", 2, _F.TYPE_MESSAGE, one, f".{_PACKAGE}.Int64Value"),
        ("signature_name", 3, _F.TYPE_STRING, one, ""),
    )
    message("GetModelStatusRequest", ("model_spec", 1, _F.TYPE_MESSAGE, one, f".{_PACKAGE}.ModelSpec"))
    message("ModelVersionStatus", ("version", 1, _F.TYPE_INT64, one, ""), ("state", 2, _F.TYPE_INT32, one, ""))
    message(
        "GetModelStatusResponse",
        ("model_version_status", 1, _F.TYPE_MESSAGE, many, f".{_PACKAGE}.ModelVersionStatus"),
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return tuple(
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
        for name in ("GetModelStatusRequest", "GetModelStatusResponse")
    )


GetModelStatusRequest, GetModelStatusResponse = _build_messages()


def status_request(model_name: str, version: int | None = None):
    request = GetModelStatusRequest()
    request.model_spec.name = model_name
    if version is not None:
        request.model_spec.version.value = version
    return request


def available_versions(address: str, model_name: str, version: int | None = None, timeout_s: float = 2.0) -> list[int]:
    """Versions of `model_name` that TF Serving at `address` reports AVAILABLE; [] when unreachable."""
    try:
        with grpc.insecure_channel(address) as channel:
            call = channel.unary_unary(
                METHOD,
                request_serializer=GetModelStatusRequest.SerializeToString,
                response_deserializer=GetModelStatusResponse.FromString,
            )
            response = call(status_request(model_name, version), timeout=timeout_s)
    except grpc.RpcError as exc:
        log.info("TF Serving at %s not ready: %s", address, exc.code())
        return []
    return sorted(s.version for s in response.model_version_status if s.state == AVAILABLE)
