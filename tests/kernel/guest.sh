# Runs as /init's body inside the test VM (busybox sh, cwd /root).
# models.env (written by the host) sets MODELS, mod_<m> (module name) and
# inputs_<m> (input files). Results go to the serial console: "@@CHECK name
# PASS|FAIL why" lines and base64 files between "@@BEGIN name"/"@@END name".
. /root/models.env
. /root/guest_lib.sh
SYS=/sys/kernel/cerebro

# 1. load the modules, run every model once
check insmod_core insmod cerebro.ko
check device_node test -c /dev/cerebro
for m in $MODELS; do check "insmod_$m" insmod "$m.ko"; done
# code for CPU features this CPU lacks must not register (it would fault in the kernel)
if grep -qw avx512f /proc/cpuinfo; then
	check insmod_v4 insmod v4.ko
else
	echo "cerebro-check: insmod_v4_refused" > /dev/kmsg
	check insmod_v4_refused sh -c '! insmod v4.ko'
fi
for m in $MODELS; do
	check "run_$m" run_model "$m" "out_$m.bin"
	emit "out_$m" "out_$m.bin"
done
# the integer-only model runs without an FPU section; the float ones in one per stage
{ echo "int8 $(cat "$SYS/models/$mod_int8/fpu")"; echo "mlp $(cat "$SYS/models/$mod_mlp/fpu")"; } > fpu.txt
emit fpu fpu.txt
fpu_calls kernel_fpu_begin_mask int8 mlp > fpu_calls.txt 2>&1
emit fpu_calls fpu_calls.txt
cerebro-ctl load mlp.cbx > load_mlp.txt 2>&1
emit load_mlp load_mlp.txt
emit signature_mlp "$SYS/models/$mod_mlp/signature"

# 2. the bad-input matrix
vm-checks badinput mlp.cbx truncated.cbx corrupt.cbx unregistered.cbx "$mod_mlp"

# 3. sysfs: statistics, pre- and post-processing, the default model
D=$SYS/models/$mod_mlp
calls0=$(cat "$D/calls")
check run_repeat run_model mlp rep.bin "--repeat 10"
calls1=$(cat "$D/calls")
if [ $((calls1 - calls0)) = 10 ]; then pass calls_counted; else fail calls_counted "$calls0 -> $calls1"; fi
echo 0.5 > "$D/preprocess_scale"; echo 0.25 > "$D/preprocess_offset"
check run_pre run_model mlp pre.bin; emit out_pre pre.bin
echo 1 > "$D/preprocess_scale"; echo 0 > "$D/preprocess_offset"
for post in softmax argmax "topk 3"; do
	tag=$(echo "$post" | tr -d ' ')
	echo "$post" > "$D/postprocess"
	check "run_$tag" run_model mlp "post_$tag.bin"; emit "out_$tag" "post_$tag.bin"
done
emit postprocess_value "$D/postprocess"
echo none > "$D/postprocess"
vm-checks write postprocess_unknown "$D/postprocess" bogus 22
vm-checks write postprocess_topk_zero "$D/postprocess" "topk 0" 22
vm-checks write postprocess_topk_too_big "$D/postprocess" "topk 1000" 22
vm-checks write scale_not_a_number "$D/preprocess_scale" abc 22
vm-checks write model_path_corrupt "$SYS/model_path" /root/corrupt.cbx 74
vm-checks write model_path_good "$SYS/model_path" /root/mlp.cbx 0
check run_default cerebro-ctl run - mlp_in0.bin -o default.bin
check default_matches cmp default.bin out_mlp.bin
check default_pinned test "$(cat "$D/users")" = 1
vm-checks write unload_default "$SYS/unload" "$mod_mlp" 0
check default_released test "$(cat "$D/users")" = 0
cerebro-ctl info > info.txt 2>&1; emit info info.txt

# 4. timing (reported, not asserted): warm up, reset the statistics, measure
{
	run_model tiny t.bin "--repeat 3000" 2>&1 | sed 's/^/tiny /'
	for m in $MODELS; do
		eval "d=$SYS/models/\$mod_$m"
		run_model "$m" t.bin "--repeat 3" 2>/dev/null
		echo 0 > "$d/calls"
		run_model "$m" t.bin "--repeat 20" 2>&1 | sed "s/^/$m /"
		echo "$m sysfs mean_latency_ns $(cat "$d/mean_latency_ns") max_fpu_section_ns $(cat "$d/max_fpu_section_ns") stages $(cat "$d/stages")"
	done
} > timing.txt
emit timing timing.txt
check stats_reset test "$(cat "$SYS/models/$mod_mlp/calls")" = 20
vm-checks write calls_nonzero "$SYS/models/$mod_mlp/calls" 5 22

# 5. several processes at once, each checked against the single run
for i in 1 2 3; do
	for m in $MODELS; do run_model "$m" "par_${m}_$i.bin" "--repeat 15" 2>/dev/null & done
done
wait
for i in 1 2 3; do
	for m in $MODELS; do check "parallel_${m}_$i" cmp "par_${m}_$i.bin" "out_$m.bin"; done
done

# 6. rmmod / insmod cycles
for c in 1 2 3; do
	ok=1
	for m in $MODELS; do eval "rmmod \$mod_$m" || ok=0; done
	rmmod cerebro || ok=0
	[ -e /dev/cerebro ] && ok=0
	insmod cerebro.ko || ok=0
	for m in $MODELS; do insmod "$m.ko" || ok=0; done
	run_model mlp cyc.bin && cmp cyc.bin out_mlp.bin || ok=0
	if [ $ok = 1 ]; then pass "rmmod_cycle_$c"; else fail "rmmod_cycle_$c" "see log"; fi
done

# 7. LOAD_MODEL finds a depmod'ed model module by its alias (request_module)
rmmod "$mod_mlp"
mkdir -p "/lib/modules/$(uname -r)/extra"
cp mlp.ko "/lib/modules/$(uname -r)/extra/$mod_mlp.ko"
depmod
check autoload run_model mlp auto.bin
check autoload_matches cmp auto.bin out_mlp.bin

# 8. the Python API (cerebro.kernel) with the host's interpreter and numpy
PYTHONPATH=/py PYTHONDONTWRITEBYTECODE=1 "$PYTHON" guest_api.py 2>&1 | tail -n 40

# 8b. the write()/read() command channel (issue #16): its refusals and results (vm_checks.c), then
# docs/kernel.md's shell example as is. A fresh window of the log's rate limit: the first refusal is logged.
sleep 5
cat $inputs_twoio > twoio_in.bin
vm-checks channel mlp.cbx mlp_in0.bin out_mlp.bin twoio.cbx twoio_in.bin out_twoio.bin
cp mlp.cbx /m.cbx && cp mlp_in0.bin x.bin
sh command_channel.sh > channel_example.txt 2>&1
emit channel_example channel_example.txt
emit channel_out y.bin
check channel_example_matches_ioctl cmp y.bin out_mlp.bin
echo argmax > "$D/postprocess"	# GET_RESULTS returns output 0 after post-processing, as the ioctl does
exec 3<>/dev/cerebro
{ echo LOAD_MODEL mlp.cbx; echo EXECUTE_MODEL; cat mlp_in0.bin; echo GET_RESULTS; } >&3 && cat <&3 > channel_argmax.bin
exec 3>&-
echo none > "$D/postprocess"
check channel_postprocessed cmp channel_argmax.bin post_argmax.bin

# 9. hostile callers (issue #10): each is refused quickly, with a reason, and harms nothing
check sysfs_paths_root_only test "$(stat -c %a "$SYS/model_path" "$SYS/last_error" "$D/last_error" | tr '\n' ' ')" = "600 400 400 "
mkfifo /tmp/fifo
vm-checks load load_fifo /tmp/fifo 22
vm-checks load load_device_node /dev/null 22
vm-checks write model_path_fifo "$SYS/model_path" /tmp/fifo 22
truncate -s $((512 * 1024 * 1024 + 1)) /tmp/big.cbx	# sparse: no memory used
vm-checks load load_over_512mib /tmp/big.cbx 27
rm /tmp/big.cbx
vm-checks load load_regions_lie /root/regions_lie.cbx 8
vm-checks load load_newline_path "$(printf '/nonexistent\ncerebro: forged line')" 2
check log_not_forged sh -c '! dmesg | grep -q "^\[[ 0-9.]*\] cerebro: forged line"'
vm-checks write model_path_leading_space "$SYS/model_path" " /root/mlp.cbx" 0
check model_path_trimmed test "$(cat "$SYS/model_path")" = /root/mlp.cbx
vm-checks write model_path_release "$SYS/model_path" " " 0
check insmod_wide insmod wide.ko
emit signature_wide "$SYS/models/$mod_wide/signature"
cerebro-ctl load wide.cbx > load_wide.txt 2>&1; emit load_wide load_wide.txt
mount -t cgroup2 none /sys/fs/cgroup && echo +memory > /sys/fs/cgroup/cgroup.subtree_control &&
	mkdir /sys/fs/cgroup/cerebro
vm-checks memcg handle_memory_charged /sys/fs/cgroup/cerebro wide.cbx $((WIDE_ARENA / 2))
vm-checks killable waiter_killable mlp.cbx
printf '#!/bin/sh\necho "$*" >> /tmp/modprobe.calls\nexec /sbin/modprobe "$@"\n' > /root/modprobe-counter
chmod +x /root/modprobe-counter
echo /root/modprobe-counter > /proc/sys/kernel/modprobe
vm-checks loadmany load_unregistered_40 40 unregistered.cbx 65
echo /sbin/modprobe > /proc/sys/kernel/modprobe
runs=$(cat /tmp/modprobe.calls 2>/dev/null | wc -l)
if [ "$runs" -le 10 ]; then pass modprobe_rate_limited; else fail modprobe_rate_limited "$runs modprobe runs for 40 loads"; fi
rmmod "$mod_tiny"
# a console that prints warnings (as a serial console does) keeps a refused write busy after its
# refusal, so a model freed by rmmod meanwhile is used after free unless the lock covers it all
echo 8 > /proc/sys/kernel/printk
vm-checks race unload_vs_rmmod tiny.ko "$mod_tiny" 3
echo 3 > /proc/sys/kernel/printk

# 10. each open file keeps its own last error; crafted files and fatal signals (issues #10, #11)
vm-checks perfile errors_per_file
vm-checks names /tmp/names.cbx 128 256	# 255 sections named by one 128 MiB name, 256 MiB in all
vm-checks hostile hostile_name_sections /tmp/names.cbx 8
rm /tmp/names.cbx
vm-checks hostile hostile_symbols symbols.cbx 8
vm-checks killload killed_load mlp.cbx 256
check insmod_slow insmod slow.ko
vm-checks killstages killed_between_stages slow.cbx mlp.cbx
vm-checks killchannel channel_killed_between_stages slow.cbx mlp.cbx
check no_soft_lockup sh -c '! dmesg | grep -q -e "soft lockup" -e "rcu_.*stall"'

vm-checks flood log_flood 10000	# last: the host counts the log lines after its marker
