# Helpers both guest scripts (guest.sh for x86-64, guest_arm64.sh) source from /root/guest_lib.sh.
# Results go to the serial console: "@@CHECK name PASS|FAIL why" lines, which the host parses, and
# files base64-encoded between "@@BEGIN name"/"@@END name" (cerebro.kmod.vm_file decodes them).

pass() { echo "@@CHECK $1 PASS"; }
fail() { echo "@@CHECK $1 FAIL $2"; }
# check NAME CMD...: PASS if CMD succeeds, else FAIL with its output's last lines
check() {
	name=$1; shift
	if "$@" >/tmp/check.out 2>&1; then pass "$name"; else fail "$name" "$(tail -n 3 /tmp/check.out | tr '\n' ' ')"; fi
}
emit() { echo "@@BEGIN $1"; base64 "$2"; echo "@@END $1"; }
# run_model M OUT [ARGS]: model M on its inputs (inputs_M from models.env) through /dev/cerebro
run_model() { eval "cerebro-ctl run $1.cbx \$inputs_$1 -o $2 $3"; }
# fpu_calls FUNC M...: "M COUNT" per model, COUNT the calls of FUNC (kernel_fpu_begin_mask, kernel_neon_begin)
# from cerebro.ko's own functions that ftrace's function tracer saw during 5 runs of M: 0 for an fpu "none"
# model. Callers elsewhere in the kernel (a crc or crypto routine) are not the model's: a clean CI run once
# saw one such call during the integer model's runs.
fpu_calls() {
	func=$1; shift
	t=/sys/kernel/tracing
	mount -t tracefs nodev $t 2>/dev/null
	ours=$(awk '$4 == "[cerebro]" { printf "%s%s", sep, $3; sep = "|" }' /proc/kallsyms)
	[ -n "$ours" ] || return 1
	echo "$func" > $t/set_ftrace_filter || return 1
	echo function > $t/current_tracer
	for m in "$@"; do
		echo > $t/trace
		run_model "$m" /tmp/fpu_calls.bin "--repeat 5" > /dev/null 2>&1
		echo "$m $(grep -cE "$func <-($ours)(\+0x[0-9a-f/x]+)?\$" $t/trace)"
	done
	echo nop > $t/current_tracer
	echo > $t/set_ftrace_filter
}
