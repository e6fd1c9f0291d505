# Runs as /init's body in the binfmt VM (busybox sh, cwd /root). rules.txt holds the
# lines `cerebro.loaders.binfmt` generates for this guest's interpreter paths, one a line.
# Results: "@@CHECK name PASS|FAIL why" lines, "@@RC name N" exit statuses and files
# base64-encoded between "@@BEGIN name"/"@@END name" on the serial console.
B=/proc/sys/fs/binfmt_misc

pass() { echo "@@CHECK $1 PASS"; }
fail() { echo "@@CHECK $1 FAIL $2"; }
emit() { echo "@@BEGIN $1"; base64 "$2"; echo "@@END $1"; }
# run NAME CMD...: runs CMD, emits its stdout/stderr and exit status
run() {
	name=$1; shift
	start=$(cut -d' ' -f1 /proc/uptime)
	"$@" >"$name.out" 2>"$name.err"
	rc=$?
	echo "@@RC $name $rc (from ${start}s to $(cut -d' ' -f1 /proc/uptime)s of uptime)"
	emit "$name.out" "$name.out"
	emit "$name.err" "$name.err"
}

# 1. binfmt_misc: a module in Debian's kernel (CONFIG_BINFMT_MISC=m), built in elsewhere
if [ -f binfmt_misc.ko ]; then
	insmod binfmt_misc.ko && pass insmod || fail insmod "insmod binfmt_misc.ko failed"
fi
mount -t binfmt_misc none $B && pass mount || fail mount "mount -t binfmt_misc failed"

# 2. register the rules exactly as generated (printf: no backslash interpretation)
while IFS= read -r rule; do
	name=$(echo "$rule" | cut -d: -f2)
	if printf '%s' "$rule" > $B/register; then pass "register_$name"; else fail "register_$name" "$rule"; fi
	[ -f "$B/$name" ] && emit "status_$name" "$B/$name"
done < rules.txt

# 3. the hand-offs
export CEREBRO_GREETING="from the guest"
run hello ./hello.exe a "b c"
run via_path /root/hello.exe "one arg"
run unsupported ./unsupported.exe
export PYTHONPATH=/py PYTHONDONTWRITEBYTECODE=1 OPENBLAS_NUM_THREADS=1
[ -f hello.deb ] && run deb ./hello.deb -g "via binfmt"
[ -f app.apk ] && run apk ./app.apk ignored-arg

# 4. removal (what `cerebroc pkg binfmt uninstall` writes)
echo -1 > $B/cerebro-exe
if [ -e $B/cerebro-exe ]; then fail removed "cerebro-exe still listed"; else pass removed; fi
