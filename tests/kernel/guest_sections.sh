# Runs as /init's body in the FPU-section test VM (busybox sh, cwd /root); see test_kernel_sections.py.
# models.env sets mod_<m> for mm (a 268 MFLOP matmul in slices), whole (the same in one stage) and
# wide (y = 2x over 2^20 floats). Prints "@@VALUE name value" lines and files as base64 sections.
. /root/models.env
SYS=/sys/kernel/cerebro
LIMIT=/sys/module/cerebro/parameters/max_stage_flops
value() { echo "@@VALUE $1 $2"; }
emit() { echo "@@BEGIN $1"; base64 "$2"; echo "@@END $1"; }
stat() { cat "$SYS/models/$1/$2"; }
# "LATENCY FPU": over N calls of model dir D, each alone after a statistics reset, the least
# latency and the least longest FPU section in ns (a single call is inflated when the host
# preempts the VM's CPU)
measure() {
	n=$1; d=$2; shift 2; lat=; fpu=
	while [ "$n" -gt 0 ]; do
		echo 0 > "$d/calls"
		cerebro-ctl run "$@" > /dev/null 2>&1
		l=$(cat "$d/mean_latency_ns"); f=$(cat "$d/max_fpu_section_ns")
		{ [ -z "$lat" ] || [ "$l" -lt "$lat" ]; } && lat=$l
		{ [ -z "$fpu" ] || [ "$f" -lt "$fpu" ]; } && fpu=$f
		n=$((n - 1))
	done
	echo "$lat $fpu"
}

insmod cerebro.ko && value insmod_core ok
for m in mm whole wide; do insmod "$m.ko" && value "insmod_$m" ok; done
value limit "$(cat $LIMIT)"
for m in mm whole; do
	eval "d=\$mod_$m"
	value "stages_$m" "$(stat "$d" stages)"
	value "max_stage_flops_$m" "$(stat "$d" max_stage_flops)"
done

# over the limit: refused at load (cerebro-ctl exits with the errno), and said why
cerebro-ctl load whole.cbx > /dev/null 2> whole_error.txt
value whole_load_status $?
value whole_last_error "$(cat whole_error.txt)"

# the sliced matmul: its output, and its longest FPU section next to the unsliced one's
set -- $(measure 2 "$SYS/models/$mod_mm" mm.cbx mm_in0.bin mm_in1.bin -o mm_out.bin)
value fpu_ns_mm "$2"
emit mm_out mm_out.bin
echo 1000000000 > $LIMIT
set -- $(measure 1 "$SYS/models/$mod_whole" whole.cbx mm_in0.bin mm_in1.bin -o whole_out.bin)
value fpu_ns_whole "$2"
cmp whole_out.bin mm_out.bin && value whole_same_bits ok
echo 4000000 > $LIMIT

# post-processing over 2^20 floats: results, call times, longest FPU section
D=$SYS/models/$mod_wide
for post in none argmax "topk 64" softmax; do
	tag=$(echo "$post" | tr -d ' ')
	echo "$post" > "$D/postprocess"
	set -- $(measure 3 "$D" wide.cbx wide_in0.bin -o "wide_$tag.bin")
	value "latency_ns_$tag" "$1"
	value "fpu_ns_$tag" "$2"
done
emit wide_argmax wide_argmax.bin
emit wide_topk64 wide_topk64.bin
head -c 65536 wide_softmax.bin > softmax_head.bin
emit wide_softmax_head softmax_head.bin
