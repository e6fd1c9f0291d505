"""Runs inside the test VM with the host's Python: cerebro.kernel against the real /dev/cerebro.

Prints "@@CHECK name PASS|FAIL" lines and the outputs as base64 sections, like guest.sh.
"""

import base64
import errno

import numpy as np

from cerebro import kernel


def check(name, ok, why=""):
    print(f"@@CHECK {name} {'PASS' if ok else 'FAIL'} {why}", flush=True)


def emit(name, arrays):
    data = b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)
    print(f"@@BEGIN {name}\n{base64.b64encode(data).decode()}\n@@END {name}", flush=True)


def refused(fn, code):
    try:
        fn()
    except kernel.KernelError as error:
        return error.errno == code
    return False


def main():
    with kernel.Device() as dev:
        mlp = dev.load("/root/mlp.cbx")
        x = np.fromfile("/root/mlp_in0.bin", mlp.inputs[0].dtype.numpy).reshape(mlp.inputs[0].shape)
        emit("api_mlp", mlp(x))
        check("api_signature", mlp.name == "mlp" and mlp.module.startswith("cbx_"), f"{mlp.name} {mlp.module}")
        twoio = dev.load("/root/twoio.cbx")
        ins = [np.fromfile(f"/root/twoio_in{i}.bin", spec.dtype.numpy).reshape(spec.shape)
               for i, spec in enumerate(twoio.inputs)]
        emit("api_twoio", twoio(*ins))
        try:
            mlp(x[:1])
            check("api_wrong_shape", False, "no ValueError")
        except ValueError:
            check("api_wrong_shape", True)
        check("api_corrupt_refused", refused(lambda: dev.load("/root/corrupt.cbx"), errno.EBADMSG))
        try:
            dev.load("/root/corrupt.cbx")
        except kernel.KernelError as error:  # the reason comes from this file's LAST_ERROR
            check("api_error_says_why", "content hash mismatch" in str(error), str(error))
        mlp.unload()
        check("api_unloaded_handle_refused", refused(lambda: mlp(x), errno.ENOENT))


main()
