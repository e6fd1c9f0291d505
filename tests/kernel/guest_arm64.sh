# Runs as /init's body inside the arm64 test VM (busybox sh, cwd /root); see test_arm64_vm.py.
# models.env (written by the host) sets MODELS, mod_<m> (module name) and inputs_<m> (input files).
# Results go to the serial console: "@@CHECK name PASS|FAIL why" lines and base64 files between
# "@@BEGIN name"/"@@END name", as tests/kernel/guest.sh prints them for x86-64.
. /root/models.env
. /root/guest_lib.sh
SYS=/sys/kernel/cerebro

# 1. load the modules, run every model; the longest NEON section of each
check insmod_core insmod cerebro.ko
check device_node test -c /dev/cerebro
for m in $MODELS; do check "insmod_$m" insmod "$m.ko"; done
# code built for SVE must not register on a CPU without it (it would fault in the kernel)
echo "cerebro-check: insmod_sve_refused" > /dev/kmsg
check insmod_sve_refused sh -c '! insmod sve.ko'
for m in $MODELS; do
	check "run_$m" run_model "$m" "out_$m.bin"
	emit "out_$m" "out_$m.bin"
done
{ echo "int8 $(cat "$SYS/models/$mod_int8/fpu")"; echo "mlp $(cat "$SYS/models/$mod_mlp/fpu")"; } > fpu.txt
emit fpu fpu.txt
fpu_calls kernel_neon_begin int8 mlp > fpu_calls.txt 2>&1
emit fpu_calls fpu_calls.txt
# (2 calls: the run above already had TCG translate the code; ResNet18 takes seconds a call)
for m in $MODELS; do
	eval "d=$SYS/models/\$mod_$m"
	echo 0 > "$d/calls"
	run_model "$m" t.bin "--repeat 2" > /dev/null 2>&1
	echo "$m stages $(cat "$d/stages") max_fpu_section_ns $(cat "$d/max_fpu_section_ns")" \
		"mean_latency_ns $(cat "$d/mean_latency_ns")"
done > sections.txt
emit sections sections.txt

# 2. the ioctls' bad-input matrix (vm_checks.c, built for arm64)
vm-checks badinput mlp.cbx truncated.cbx corrupt.cbx unregistered.cbx "$mod_mlp"

# 3. sysfs pre- and post-processing
D=$SYS/models/$mod_mlp
echo 0.5 > "$D/preprocess_scale"; echo 0.25 > "$D/preprocess_offset"
check run_pre run_model mlp pre.bin; emit out_pre pre.bin
echo 1 > "$D/preprocess_scale"; echo 0 > "$D/preprocess_offset"
for post in softmax argmax; do
	echo "$post" > "$D/postprocess"
	check "run_$post" run_model mlp "post_$post.bin"; emit "out_$post" "post_$post.bin"
done
echo none > "$D/postprocess"

# 4. docs/kernel.md's command channel example, as is
cp mlp.cbx /m.cbx && cp mlp_in0.bin x.bin
sh command_channel.sh > channel_example.txt 2>&1
emit channel_example channel_example.txt
check channel_example_matches_ioctl cmp y.bin out_mlp.bin
