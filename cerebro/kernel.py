"""A small Python API over /dev/cerebro (the kernel-resident runtime).

    from cerebro import kernel
    with kernel.Device() as dev:
        model = dev.load("model.cbx")      # LOAD_MODEL: the kernel reads and checks the file
        outputs = model(x)                 # EXECUTE_MODEL + GET_RESULTS

The structs mirror runtime_kmod/include/cerebro/uapi.h; tests check their
sizes and the ioctl numbers against the C header.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os

import numpy as np

from cerebro.compiler.cbx.format import TensorSpec
from cerebro.compiler.ir.dtypes import DType

UAPI_VERSION = 1
DEVICE_PATH = "/dev/cerebro"
MAX_BUFFERS = 256
ERROR_LEN = 160


class Load(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("version", ctypes.c_uint32), ("path", ctypes.c_uint64),
                ("handle", ctypes.c_uint32), ("reserved", ctypes.c_uint32)]


class Buffer(ctypes.Structure):
    _fields_ = [("data", ctypes.c_uint64), ("nbytes", ctypes.c_uint64)]


class IO(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("version", ctypes.c_uint32), ("handle", ctypes.c_uint32),
                ("num_buffers", ctypes.c_uint32), ("buffers", ctypes.c_uint64)]


class TensorInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 64), ("dtype", ctypes.c_uint32), ("rank", ctypes.c_uint32),
                ("dims", ctypes.c_uint64 * 8), ("nbytes", ctypes.c_uint64)]


class Info(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("version", ctypes.c_uint32), ("handle", ctypes.c_uint32),
                ("max_tensors", ctypes.c_uint32), ("tensors", ctypes.c_uint64), ("num_inputs", ctypes.c_uint32),
                ("num_outputs", ctypes.c_uint32), ("num_stages", ctypes.c_uint32), ("reserved", ctypes.c_uint32),
                ("hash", ctypes.c_uint8 * 32), ("model_name", ctypes.c_char * 64),
                ("module_name", ctypes.c_char * 64)]


class HandleArg(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("version", ctypes.c_uint32), ("handle", ctypes.c_uint32),
                ("reserved", ctypes.c_uint32)]


class LastError(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("version", ctypes.c_uint32), ("error", ctypes.c_int32),
                ("reserved", ctypes.c_uint32), ("message", ctypes.c_char * ERROR_LEN)]


def _ioc(direction: int, nr: int, struct: type[ctypes.Structure]) -> int:
    """Linux _IOC(dir, 0xCB, nr, sizeof(struct)) for x86-64 and arm64."""
    return (direction << 30) | (ctypes.sizeof(struct) << 16) | (0xCB << 8) | nr


_WRITE, _READ = 1, 2
IOCTLS = {
    "LOAD_MODEL": _ioc(_READ | _WRITE, 1, Load),
    "EXECUTE_MODEL": _ioc(_WRITE, 2, IO),
    "GET_RESULTS": _ioc(_WRITE, 3, IO),
    "MODEL_INFO": _ioc(_READ | _WRITE, 4, Info),
    "UNLOAD_MODEL": _ioc(_WRITE, 5, HandleArg),
    "LAST_ERROR": _ioc(_READ | _WRITE, 6, LastError),
}


class KernelError(OSError):
    """An ioctl the kernel refused; errno says which rule, the message says why (the file's LAST_ERROR)."""


def _new(struct: type[ctypes.Structure], **fields: int) -> ctypes.Structure:
    return struct(size=ctypes.sizeof(struct), version=UAPI_VERSION, **fields)


class Device:
    """An open /dev/cerebro; its handles live until close()."""

    def __init__(self, path: str = DEVICE_PATH) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)

    def ioctl(self, name: str, arg: ctypes.Structure) -> None:
        try:
            fcntl.ioctl(self.fd, IOCTLS[name], arg)
        except OSError as error:
            code = error.errno or errno.EIO
            raise KernelError(code, f"{name}: {os.strerror(code)}: {self.last_error()}") from None

    def last_error(self) -> str:
        """Why the last refused call on this open file was refused (each open file keeps its own)."""
        arg = _new(LastError)
        try:
            fcntl.ioctl(self.fd, IOCTLS["LAST_ERROR"], arg)
        except OSError as error:
            return f"no reason available (LAST_ERROR: {os.strerror(error.errno or errno.EIO)})"
        return arg.message.decode(errors="replace")

    def load(self, path: str | os.PathLike | None) -> KernelModel:
        """LOAD_MODEL; None loads the default model (/sys/kernel/cerebro/model_path)."""
        raw = None if path is None else ctypes.create_string_buffer(os.fsencode(os.path.abspath(path)))
        arg = _new(Load, path=0 if raw is None else ctypes.addressof(raw))
        self.ioctl("LOAD_MODEL", arg)
        return KernelModel(self, arg.handle)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class KernelModel:
    """A model handle: call it with arrays in signature order, get the outputs."""

    def __init__(self, device: Device, handle: int) -> None:
        self.device = device
        self.handle = handle
        self.inputs, self.outputs, self.name, self.module = self._info()

    def _info(self) -> tuple[list[TensorSpec], list[TensorSpec], str, str]:
        records = (TensorInfo * MAX_BUFFERS)()
        info = _new(Info, handle=self.handle, max_tensors=MAX_BUFFERS, tensors=ctypes.addressof(records))
        self.device.ioctl("MODEL_INFO", info)
        tensors = [TensorSpec(r.name.decode(), tuple(r.dims[: r.rank]), DType(r.dtype))
                   for r in records[: info.num_inputs + info.num_outputs]]
        return (tensors[: info.num_inputs], tensors[info.num_inputs :], info.model_name.decode(),
                info.module_name.decode())

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        if len(arrays) != len(self.inputs):
            raise ValueError(f"{self.name} takes {len(self.inputs)} inputs, got {len(arrays)}")
        inputs = []
        for spec, array in zip(self.inputs, arrays):
            array = np.ascontiguousarray(array)
            if array.dtype != spec.dtype.numpy or array.shape != spec.shape:
                raise ValueError(f"input {spec.name!r}: got {array.dtype}{list(array.shape)}, "
                                 f"the model takes {spec.dtype.numpy}{list(spec.shape)}")
            inputs.append(array)
        self._io("EXECUTE_MODEL", inputs)
        # post-processing (sysfs) may change output 0: ask again for its current shape
        _, self.outputs, _, _ = self._info()
        outputs = [np.empty(spec.shape, spec.dtype.numpy) for spec in self.outputs]
        self._io("GET_RESULTS", outputs)
        return outputs

    def _io(self, name: str, arrays: list[np.ndarray]) -> None:
        buffers = (Buffer * max(1, len(arrays)))()
        for buffer, array in zip(buffers, arrays):
            buffer.data, buffer.nbytes = array.ctypes.data, array.nbytes
        self.device.ioctl(name, _new(IO, handle=self.handle, num_buffers=len(arrays),
                                     buffers=ctypes.addressof(buffers)))

    def unload(self) -> None:
        self.device.ioctl("UNLOAD_MODEL", _new(HandleArg, handle=self.handle))
