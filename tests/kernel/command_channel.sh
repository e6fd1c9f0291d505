# docs/kernel.md's command channel example, run as is by tests/kernel/guest.sh (busybox sh,
# any architecture): /m.cbx is a model whose module is loaded, x.bin its inputs; writes y.bin.
exec 3<>/dev/cerebro              # fd 3: one open file, with its own command channel
echo LOAD_MODEL /m.cbx >&3        # read and check /m.cbx, bind it to its model module
echo INFO >&3; cat <&3            # the signature as text, up to EOF
echo EXECUTE_MODEL >&3            # the next bytes written are the inputs:
cat x.bin >&3                     # all of them, raw, in signature order; then it runs
echo GET_RESULTS >&3              # the next reads return the outputs' raw bytes,
dd bs=64 <&3 >y.bin 2>/dev/null   # in pieces of any size, up to EOF
echo UNLOAD_MODEL >&3
exec 3>&-
