"""The Win32/CRT surface of the native PE loader (issue 18 item 3, x64): every missing import named in
one refusal, `pkg info --imports`, and the CRT functions classic C programs use, each program built
with MinGW during the test and compared with the same source built for Linux."""

import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
import test_pe
from loader_support import need
from sources import ucrt_flags

from cerebro.loaders.cli import main as cli_main
from cerebro.loaders.native_build import native_program
from cerebro.loaders.pe import PeFile
from cerebro.loaders.pe_package import import_support, shim_table

MISSING = r"""
#include <windows.h>
#include <stdio.h>
#include <direct.h>
int main(void)
{
    char b[64]; DWORD n = sizeof b;
    GetComputerNameA(b, &n);
    GetVolumeInformationA(NULL, NULL, 0, NULL, NULL, NULL, NULL, 0);
    printf("%d\n", _getdrive());
    return 0;
}
"""

SCANF = r"""
#include <stdio.h>
int main(void)
{
    int a, n; long l; long long q; double d; float f; char w[16], set[16], c; unsigned short h;
    n = sscanf("7 -9 123456789012 2.5 1.25 word abc]x 65535", "%d %ld %lld %lf %f %15s %15[a-c] %*c%*c %hu",
               &a, &l, &q, &d, &f, w, set, &h);
    printf("%d: %d %ld %lld %.2f %.2f %s %s %u\n", n, a, l, q, d, f, w, set, h);
    printf("empty %d, mismatch %d\n", sscanf("", "%d", &a), sscanf("x", "%d", &a));
    while (scanf("%d", &a) == 1)
        printf("got %d\n", a);
    if (scanf(" %c", &c) == 1) {
        ungetc(c, stdin);
        n = fscanf(stdin, "%15s %lf", w, &d);
        printf("%d word %s %g\n", n, w, d);
    }
    return 0;
}
"""

TIME = r"""
#include <stdio.h>
#include <time.h>
int main(void)
{
    static const long long stamps[] = {0, 951782400, 1700000000, 4102444799LL};
    char b[200];
    for (int i = 0; i < 4; i++) {
        time_t t = (time_t)stamps[i];
        struct tm *g = gmtime(&t);
        strftime(b, sizeof b, "%Y-%m-%d %H:%M:%S %a %A %b %B %j %p %I %U %W %w %y %d %m %%", g);
        printf("%lld: %s | yday %d wday %d\n", stamps[i], b, g->tm_yday, g->tm_wday);
        struct tm *l = localtime(&t);  /* the test runs the Linux build with TZ=UTC */
        printf("  local %02d:%02d, isdst %d\n", l->tm_hour, l->tm_min, l->tm_isdst);
    }
    struct tm m = {0};
    m.tm_year = 126; m.tm_mon = 1; m.tm_mday = 30; m.tm_hour = 25;  /* normalised: 2026-03-03 01:00 */
    time_t mt = mktime(&m);
    printf("mktime %lld -> %d-%02d-%02d %02d yday %d, difftime %.1f\n", (long long)mt, m.tm_year + 1900,
           m.tm_mon + 1, m.tm_mday, m.tm_hour, m.tm_yday, difftime(mt, 0));
    printf("too small: %d\n", (int)strftime(b, 4, "%Y-%m-%d", gmtime(&mt)));
    time_t now = time(NULL), now2;
    time(&now2);
    printf("now plausible %d, clock plausible %d\n", now > 1700000000 && now2 >= now, clock() >= 0);
#ifdef _WIN32
    time_t zero = 0;
    strftime(b, sizeof b, "%c|%x|%X|%#d", gmtime(&zero));
    fprintf(stderr, "msvcrt forms: %s\n", b);
#endif
    return 0;
}
"""

NUMBERS = r"""
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv)
{
    const char *inputs[] = {"3.14159", "  -2.5e-3xyz", "1e308", "0x1p4", "inf", "12abc", "", ".5", "-0"};
    for (int i = 0; i < 9; i++) {
        char *end;
        double d = strtod(inputs[i], &end);
        float f = strtof(inputs[i], NULL);
        printf("[%s] atof %.17g strtod %.17g rest [%s] strtof %.9g\n", inputs[i], atof(inputs[i]), d, end, f);
    }
    for (int i = 1; i < argc; i++)
        printf("arg %s -> %g %ld\n", argv[i], atof(argv[i]), atol(argv[i]));
    return 0;
}
"""

CTYPE = r"""
#include <ctype.h>
#include <stdio.h>
#include <string.h>
typedef int (*classify)(int);
int main(int argc, char **argv)
{
    static const struct { const char *name; classify fn; } classes[] = {
        {"alpha", isalpha}, {"upper", isupper}, {"lower", islower}, {"digit", isdigit}, {"xdigit", isxdigit},
        {"space", isspace}, {"punct", ispunct}, {"alnum", isalnum}, {"print", isprint}, {"graph", isgraph},
        {"cntrl", iscntrl}, {"blank", isblank}};
    for (unsigned k = 0; k < sizeof classes / sizeof classes[0]; k++) {
        printf("%-6s ", classes[k].name);
        for (int c = -1; c < 256; c++)
            putchar(classes[k].fn(c) ? '1' : '0');
        putchar('\n');
    }
    for (int c = -1; c < 256; c++)
        printf("%d%c", toupper(c) - tolower(c), c == 255 ? '\n' : ',');
    char line[] = "  alpha,beta;;gamma  delta,";
    for (char *tok = strtok(line, " ,;"); tok; tok = strtok(NULL, " ,;"))
        printf("tok [%s] upper:", tok), printf("%c%s\n", toupper((unsigned char)tok[0]), tok + 1);
    const char *hay = argc > 1 ? argv[1] : "needle in a haystack";
    const char *at = memchr(hay, 'a', strlen(hay));
    printf("memchr a at %d; z %s\n", at ? (int)(at - hay) : -1, memchr(hay, 'z', strlen(hay)) ? "found" : "absent");
    printf("spn %zu cspn %zu pbrk %s\n", strspn(hay, "nedl"), strcspn(hay, " "), strpbrk(hay, "ai"));
    return 0;
}
"""

THREAD_LOCAL = r"""
#include <stdio.h>
static __thread int counter = 40;
static __thread struct { char name[8]; long long total; } record = {"rec", 5};
static _Thread_local int zeroed;
static int bump(int by) { counter += by; record.total *= by; return counter; }
int main(void)
{
    for (int i = 1; i <= 3; i++) {
        int now = bump(i);
        printf("bump %d -> %d total %lld\n", i, now, record.total);
    }
    zeroed++;
    printf("%s %d\n", record.name, zeroed);
    return counter == 46 ? 0 : 1;
}
"""

JUMPS_AND_FILES = r"""
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#ifdef _WIN32
#include <fcntl.h>
#include <io.h>
#define STAT struct _stat64
#define stat_path _stat64
#else
#define STAT struct stat
#define stat_path stat
#endif
static jmp_buf env;
static int depth;
static void dive(int n, int value) { depth = n; if (n == 0) longjmp(env, value); dive(n - 1, value); }
int main(int argc, char **argv)
{
    volatile double kept = 2.5;
    for (int value = 0; value < 3; value++) {
        int got = setjmp(env);
        if (!got) { kept *= 2; dive(20, value); }
        printf("longjmp(%d) -> setjmp %d, depth %d, kept %g\n", value, got, depth, kept);
    }
    STAT st;
    int r = stat_path(argv[1], &st);
    printf("stat %d size %lld dir %d reg %d mtime %lld\n", r, (long long)st.st_size, (st.st_mode & S_IFMT) == S_IFDIR,
           (st.st_mode & S_IFMT) == S_IFREG, (long long)st.st_mtime);
    printf("missing %d\n", stat_path("no/such/file", &st));
    FILE *f;
#ifdef _WIN32
    int before = _setmode(_fileno(stdout), _O_BINARY);
    printf("setmode %#x then %#x\n", before, _setmode(1, _O_TEXT));
    int err = fopen_s(&f, argv[1], "rb");
#else
    printf("setmode 0x4000 then 0x8000\n");
    f = fopen(argv[1], "rb");
    int err = f ? 0 : 1;
#endif
    char buf[32] = {0};
    if (!err && fgets(buf, sizeof buf, f))
        printf("read [%s]\n", strtok(buf, "\n"));
    return argc;
}
"""

THREADS = r"""
#include <stdio.h>
#ifdef _WIN32
#include <windows.h>
#include <process.h>
typedef HANDLE thread_t;
static CRITICAL_SECTION lock;
static HANDLE ready;
static volatile LONG attached, detached;
static void NTAPI on_tls(PVOID h, DWORD reason, PVOID r)
{ (void)h; (void)r; if (reason == DLL_THREAD_ATTACH) attached++; if (reason == DLL_THREAD_DETACH) detached++; }
__attribute__((section(".CRT$XLB"), used)) PIMAGE_TLS_CALLBACK tls_cb = on_tls;
#define LOCK() EnterCriticalSection(&lock)
#define UNLOCK() LeaveCriticalSection(&lock)
#define POST() ReleaseSemaphore(ready, 1, NULL)
#define ROUTINE(name) static DWORD WINAPI name(LPVOID arg)
#define QUIT(code) ExitThread(code)
#else
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
typedef pthread_t thread_t;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static sem_t ready;
#define LOCK() pthread_mutex_lock(&lock)
#define UNLOCK() pthread_mutex_unlock(&lock)
#define POST() sem_post(&ready)
#define ROUTINE(name) static void *name(void *arg)
#define QUIT(code) pthread_exit((void *)(uintptr_t)(code))
#endif
static long long shared;
static __thread long mine;
static void quit_from_deep(int n, int code) { if (!n) QUIT(code); quit_from_deep(n - 1, code); }
ROUTINE(worker)
{
    int id = (int)(size_t)arg;
    for (int i = 0; i < 20000 + id; i++) { LOCK(); shared += id + 1; UNLOCK(); mine++; }
    POST();
    if (id == 3)
        quit_from_deep(10, 77);
    return (id * 10 + (int)(mine % 7));
}
int main(void)
{
    thread_t t[4];
    unsigned long codes[4];
#ifdef _WIN32
    InitializeCriticalSection(&lock);
    ready = CreateSemaphoreW(NULL, 0, 10, NULL);
    for (int i = 0; i < 4; i++)
        t[i] = i % 2 ? CreateThread(NULL, 0, worker, (LPVOID)(size_t)i, 0, NULL)
                     : (HANDLE)_beginthreadex(NULL, 0, (unsigned (__stdcall *)(void *))worker, (void *)(size_t)i,
                                              0, NULL);
    for (int i = 0; i < 4; i++)
        WaitForSingleObject(ready, INFINITE);
    printf("wait all: %lu\n", WaitForMultipleObjects(4, t, TRUE, INFINITE));
    printf("semaphore drained: %lu\n", WaitForSingleObject(ready, 0) == WAIT_TIMEOUT ? 0ul : 1ul);
    for (int i = 0; i < 4; i++) {
        DWORD c; GetExitCodeThread(t[i], &c); codes[i] = c; CloseHandle(t[i]);
    }
    DeleteCriticalSection(&lock);
    fprintf(stderr, "thread attach %ld detach %ld\n", (long)attached, (long)detached);
#else
    sem_init(&ready, 0, 0);
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, worker, (void *)(size_t)i);
    for (int i = 0; i < 4; i++)
        sem_wait(&ready);
    for (int i = 0; i < 4; i++) {
        void *r; pthread_join(t[i], &r); codes[i] = (unsigned long)(uintptr_t)r;
    }
    printf("wait all: 0\nsemaphore drained: %d\n", sem_trywait(&ready) != 0 ? 0 : 1);
#endif
    printf("shared %lld, main's own %ld\n", shared, mine);
    for (int i = 0; i < 4; i++)
        printf("thread %d exit %lu\n", i, codes[i]);
    return 0;
}
"""

THREAD_FAULT = r"""
#include <windows.h>
#include <stdio.h>
#include <string.h>
static volatile int sink;
static int deep(int n) { volatile char pad[512]; pad[0] = (char)n; return deep(n + 1) + pad[0]; }
static DWORD WINAPI bad(LPVOID arg)
{
    if (!strcmp(arg, "null")) *(volatile int *)0 = 1;
    else sink = deep(0);
    return 0;
}
int main(int argc, char **argv)
{
    HANDLE t = CreateThread(NULL, 0, bad, argc > 1 ? argv[1] : "null", 0, NULL);
    WaitForSingleObject(t, INFINITE);
    printf("not reached\n");
    return 0;
}
"""

LOOKUPS = r"""
#include <windows.h>
#include <stdio.h>
typedef DWORD (WINAPI *tick_fn)(void);
typedef size_t (__cdecl *strlen_fn)(const char *);
int main(void)
{
    HMODULE k32 = GetModuleHandleA("KERNEL32.DLL");
    HMODULE crt = LoadLibraryExA("C:\\Windows\\System32\\msvcrt.dll", NULL, 0);
    HMODULE ucrt = LoadLibraryA("api-ms-win-crt-string-l1-1-0.dll"), bare = LoadLibraryW(L"kernel32");
    tick_fn tick = (tick_fn)GetProcAddress(k32, "GetTickCount");
    strlen_fn len = (strlen_fn)GetProcAddress(ucrt, "strlen");
    printf("k32 %d crt %d same %d, tick %d, strlen %d\n", k32 != NULL, crt != NULL, bare == k32, tick && tick() > 0,
           len ? (int)len("seven!!") : -1);
    void *missing = LoadLibraryA("nosuch.dll");
    printf("nosuch.dll %p error %lu\n", missing, GetLastError());
    missing = GetProcAddress(k32, "NoSuchFunction");
    printf("NoSuchFunction %p error %lu\n", missing, GetLastError());
    printf("self %d, by ordinal %p\n", GetModuleHandleA(NULL) != NULL, (void *)GetProcAddress(crt, (LPCSTR)5));
    return FreeLibrary(crt) ? 0 : 1;
}
"""

SCANF_REFUSED = r"""
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv)
{
    int v[40]; wchar_t w[8];
    if (!strcmp(argv[1], "wide"))
        return sscanf("abc", "%ls", w);
    if (!strcmp(argv[1], "open-set"))
        return sscanf("abc", "%5[abc", (char *)v);
    return sscanf("1", "%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d",
                  v, v + 1, v + 2, v + 3, v + 4, v + 5, v + 6, v + 7, v + 8, v + 9, v + 10, v + 11, v + 12, v + 13,
                  v + 14, v + 15, v + 16, v + 17, v + 18, v + 19, v + 20, v + 21, v + 22, v + 23, v + 24, v + 25,
                  v + 26, v + 27, v + 28, v + 29, v + 30, v + 31, v + 32);
}
"""

WIDE = r"""
#include <stdio.h>
#include <wchar.h>
#include <wctype.h>
#include <string.h>
#include <stdlib.h>
int main(int argc, char **argv)
{
    wchar_t a[64], b[64];
    wcscpy(a, L"Hello, ");
    wcsncpy(b, L"Wide World!!", 11); b[11] = 0;
    wcscat(a, b);
    printf("len %d cmp %d %d ncmp %d\n", (int)wcslen(a), wcscmp(a, b) > 0, wcscmp(b, a) < 0, wcsncmp(a, L"Help", 3));
    printf("chr %d rchr %d str %d\n", (int)(wcschr(a, L'o') - a), (int)(wcsrchr(a, L'o') - a),
           (int)(wcsstr(a, L"World") - a));
    int classes = 0;
    for (const wchar_t *p = a; *p; p++) {
        classes += !!iswalpha(*p) + 2 * !!iswdigit(*p) + 4 * !!iswspace(*p) + 8 * !!iswupper(*p)
                   + 16 * !!iswpunct(*p);
        putchar((int)towupper(*p)); putchar((int)towlower(*p));
    }
    printf("\nclasses %d\n", classes);
    wchar_t num[] = L"  -1234xyz";
    wchar_t *end;
    long v = wcstol(num, &end, 10);
    printf("wcstol %ld rest %d\n", v, (int)(end - num));
    return 0;
}
"""

STDIO_FILES = r"""
#define __USE_MINGW_ANSI_STDIO 1 /* MinGW's own printf family, which locks a FILE through its _lock_file */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#ifdef _WIN32
#include <windows.h>
#include <io.h>
#include <share.h>
#include <sys/utime.h>
#define popen _popen
#define pclose _pclose
#define fdopen _fdopen
#define STATUS(s) (s)
#define OPEN_NEW(p) _sopen(p, _O_WRONLY | _O_CREAT | _O_EXCL | _O_BINARY, _SH_DENYNO, _S_IREAD | _S_IWRITE)
#else
#include <sys/wait.h>
#include <unistd.h>
#include <utime.h>
#define STATUS(s) (WIFEXITED(s) ? WEXITSTATUS(s) : -1)
#define OPEN_NEW(p) open(p, O_WRONLY | O_CREAT | O_EXCL, 0666)
#endif
int main(int argc, char **argv)
{
    char a[600], b[600], line[64] = "", small[8];
    if (argc > 2) {  /* a FILE* that did not come from fopen */
        char fake[64] = {0};
        return fputs("never written", (FILE *)fake);
    }
    snprintf(a, sizeof a, "%s/a.txt", argv[1]);
    snprintf(b, sizeof b, "%s/b.txt", argv[1]);
    remove(a);  /* what an earlier run left */
    remove(b);
    FILE *f = fopen(a, "w");
    printf("setvbuf %d\n", setvbuf(f, NULL, _IOFBF, 4096));
    fprintf(f, "%d %s %.3f\n", 42, "forty-two", 2.5);
    fclose(f);
    int r = rename(a, b);
    printf("rename %d, old gone %d\n", r, fopen(a, "r") == NULL);
    r = freopen(b, "r", stdin) == stdin;
    printf("freopen %d: %s", r, fgets(line, sizeof line, stdin));
    clearerr(stdin);
    FILE *t = tmpfile();
    fputs("scratch", t);
    fseek(t, 0, SEEK_SET);
    printf("tmpfile [%s]\n", fgets(line, sizeof line, t));
    fclose(t);
    r = system("exit 3");
    printf("system %d %d\n", STATUS(r), system(NULL) != 0);
    FILE *p = popen("echo piped", "r");
    printf("popen [%s]", fgets(line, sizeof line, p));
    r = pclose(p);
    printf(" close %d\n", STATUS(r));
    p = popen("exit 5", "r");
    r = pclose(p);
    printf("popen exit %d\n", STATUS(r));
    printf("locale %s", setlocale(LC_ALL, NULL));
    printf(" %s, strcoll %d\n", setlocale(LC_ALL, "C"), strcoll("a", "b") < 0);
    r = remove(b);
    printf("remove %d again %d\n", r, remove(b));
    int fd = OPEN_NEW(b);
    FILE *w = fdopen(fd, "wb");
    fputs("via a descriptor\n", w);
    fclose(w);
    printf("exclusive again %d\n", OPEN_NEW(b));
    struct utimbuf times = {1000000000, 1234567890};
    struct stat st;
    r = utime(b, &times);
    printf("utime %d, stat %d", r, stat(b, &st));
    printf(" size %lld mtime %lld\n", (long long)st.st_size, (long long)st.st_mtime);
    const char *text = argv[1][0] ? "truncated text" : "";  /* not known at compile time */
    int n = snprintf(small, sizeof small, "%s", text);
    printf("snprintf %d [%s]\n", n, small);
#ifdef _WIN32
    char me[MAX_PATH], msg[256], back[600];
    GetModuleFileNameA(NULL, me, sizeof me);
    FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, ERROR_FILE_NOT_FOUND, 0, msg,
                   sizeof msg, NULL);
    snprintf(a, sizeof a, "%s\\a.txt", argv[1]);
    f = fopen(a, "w");
    fclose(f);
    snprintf(back, sizeof back, "%s\\b.txt", argv[1]);
    r = rename(a, back);
    fprintf(stderr, "rename onto a file %d; module path has \\ %d, ends .exe %d; [%s]", r, strchr(me, '\\') != NULL,
            strstr(me, ".exe") != NULL, strtok(msg, "\r\n"));
    r = (int)FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM, NULL, 99999, 0, msg, sizeof msg, NULL);
    fprintf(stderr, "; unknown code %d %lu\n", r, GetLastError());
#endif
    return 0;
}
"""

WINDOWS_ONLY = {"missing", "thread_fault", "lookups", "scanf_refused"}  # no Linux build to compare with
PROGRAMS = {"missing": MISSING, "thread_fault": THREAD_FAULT, "lookups": LOOKUPS, "threads": THREADS,
            "jumps_files": JUMPS_AND_FILES, "scanf": SCANF, "time": TIME, "numbers": NUMBERS, "ctype": CTYPE,
            "thread_local": THREAD_LOCAL, "scanf_refused": SCANF_REFUSED,
            "wide": WIDE, "stdio_files": STDIO_FILES}


@pytest.fixture(scope="session")
def crt_programs(tmp_path_factory) -> dict[str, dict[str, str]]:
    """{name: {"exe": MinGW build, "linux": cc build (when the source is portable), "msvcrt": MinGW with
    msvcrt's scanf, "ucrt": MinGW on the UCRT (portable ones)}}, built once per session, in parallel."""
    need("x86_64-w64-mingw32-gcc", "cc")
    tmp = tmp_path_factory.mktemp("crt")
    jobs, ucrt = [], ucrt_flags()
    for name, source in PROGRAMS.items():
        (tmp / f"{name}.c").write_text(source)
        jobs.append((["x86_64-w64-mingw32-gcc", "-O1"], tmp / f"{name}.exe", tmp / f"{name}.c"))
        if name.startswith("scanf"):  # msvcrt's own scanf family rather than MinGW's inline one
            jobs.append((["x86_64-w64-mingw32-gcc", "-O1", "-D__USE_MINGW_ANSI_STDIO=0"], tmp / f"{name}.msvcrt",
                         tmp / f"{name}.c"))
        if name not in WINDOWS_ONLY:
            jobs.append((["cc", "-O1"], tmp / f"{name}.linux", tmp / f"{name}.c"))
            if ucrt is not None:  # the same program on the Universal CRT (api-ms-win-crt-*.dll)
                jobs.append((["x86_64-w64-mingw32-gcc", "-O1", *ucrt], tmp / f"{name}.ucrt", tmp / f"{name}.c"))
    build = lambda job: subprocess.run([*job[0], "-o", str(job[1]), str(job[2]), "-lm", "-pthread"], check=True)  # noqa: E731
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(build, jobs))
    kinds = ("exe", "linux", "msvcrt", "ucrt")
    return {name: {kind: str(tmp / f"{name}.{kind}") for kind in kinds if (tmp / f"{name}.{kind}").exists()}
            for name in PROGRAMS}


def imports(exe: str) -> set[str]:
    return {name for name, _ok in import_support(PeFile.parse(open(exe, "rb").read()))}


def peload(exe: str, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(native_program("peload")), exe, *args], capture_output=True, text=True, timeout=20, **kw)


def test_every_missing_import_in_one_refusal(crt_programs, capfd):
    exe = crt_programs["missing"]["exe"]
    got = peload(exe)
    want = "unsupported imports (3): KERNEL32.dll: GetComputerNameA, GetVolumeInformationA; msvcrt.dll: _getdrive"
    assert (got.returncode, got.stdout, got.stderr) == (127, "", f"cerebro-peload: {want}\n")
    assert cli_main(["pkg", "run", exe]) == 2
    assert capfd.readouterr().err == f"cerebroc pkg: error: PE: {want}\n"  # the pre-check words it the same


def test_info_imports_marks_each_import(crt_programs, capfd):
    exe = crt_programs["missing"]["exe"]
    assert cli_main(["pkg", "info", "--imports", "--json", exe]) == 0
    info = json.loads(capfd.readouterr().out)
    support = {i["import"]: i["supported"] for i in info["imports"]}
    assert support["KERNEL32.dll!GetComputerNameA"] is False and support["msvcrt.dll!_getdrive"] is False
    assert support["msvcrt.dll!malloc"] is True and support["KERNEL32.dll!Sleep"] is True
    assert info["unsupported_imports"] == 3 == sum(not ok for ok in support.values())
    assert cli_main(["pkg", "info", "--imports", exe]) == 0
    out = capfd.readouterr().out
    assert "  KERNEL32.dll!GetComputerNameA (no shim)\n" in out and "  msvcrt.dll!malloc (supported)\n" in out


def test_ucrt_names_map_onto_the_msvcrt_shims():
    table = shim_table()
    for dll in ("api-ms-win-crt-stdio-l1-1-0.dll", "API-MS-WIN-CRT-STRING-L1-1-0.DLL", "VCRUNTIME140.dll",
                "ucrtbase.dll"):
        assert table.supports(dll, "memcpy") and table.supports(dll, "fwrite")
        assert table.supports(dll, "__stdio_common_vfprintf") and not table.supports(dll, "_wfopen")
    assert not table.supports("api-ms-win-core-synch-l1-2-0.dll", "memcpy")  # only the CRT sets are aliased


def test_info_imports_refused_for_other_formats(tmp_path, capfd):
    elf = tmp_path / "true"
    elf.write_bytes(open("/bin/true", "rb").read())
    assert cli_main(["pkg", "info", "--imports", str(elf)]) == 2
    assert "--imports applies to .exe files" in capfd.readouterr().err


def same_as_linux(programs: dict, name: str, *args: str, stdin: str = "", exe: str = "exe"
                  ) -> subprocess.CompletedProcess:
    """Runs the MinGW build through the loader and the Linux build; stdout and status must match."""
    env = {"PATH": "/usr/bin:/bin", "TZ": "UTC"}
    ref = subprocess.run([programs[name]["linux"], *args], capture_output=True, text=True, input=stdin, env=env)
    got = peload(programs[name][exe], *args, input=stdin, env=env)
    assert (got.stdout, got.returncode) == (ref.stdout, ref.returncode), got.stderr
    return got


SCANF_INPUT = "1 2\n  3 xyz 2.75\n"


def test_msvcrt_scanf_family(crt_programs):
    """sscanf/scanf/fscanf/ungetc imported from msvcrt (__USE_MINGW_ANSI_STDIO=0): Windows sizes
    (%ld is 32 bits, %lld 64) map onto glibc's."""
    assert "msvcrt.dll!sscanf" in imports(crt_programs["scanf"]["msvcrt"])
    got = same_as_linux(crt_programs, "scanf", stdin=SCANF_INPUT, exe="msvcrt")
    assert got.stdout.startswith("8: 7 -9 123456789012 2.50 1.25 word abc 65535\nempty -1, mismatch 0\ngot 1\n")
    assert got.stdout.endswith("got 3\n2 word xyz 2.75\n")


def test_mingw_scanf_over_getc_ungetc(crt_programs):
    """MinGW's own scanf (libmingwex, the default) reads through msvcrt getc/ungetc."""
    same_as_linux(crt_programs, "scanf", stdin=SCANF_INPUT)


def test_time_functions(crt_programs):
    got = same_as_linux(crt_programs, "time")
    assert "0: 1970-01-01 00:00:00 Thu Thursday Jan January 001 AM 12 00 00 4 70 01 01 %" in got.stdout
    assert "mktime 1772499600 -> 2026-03-03 01 yday 61" in got.stdout
    assert got.stderr == "msvcrt forms: 01/01/70 00:00:00|01/01/70|00:00:00|1\n"  # msvcrt's %c/%x/%X, %#d


def test_atof_strtod_strtof(crt_programs):
    got = same_as_linux(crt_programs, "numbers", "2.5e2", "-17.9")
    assert "[  -2.5e-3xyz] atof -0.0025000000000000001 strtod -0.0025000000000000001 rest [xyz]" in got.stdout
    assert got.stdout.endswith("arg 2.5e2 -> 250 2\narg -17.9 -> -17.9 -17\n")


def test_ctype_strtok_memchr(crt_programs):
    got = same_as_linux(crt_programs, "ctype", "where is a needle")
    assert "tok [gamma] upper:Gamma\n" in got.stdout and "memchr a at 9; z absent\n" in got.stdout
    assert "msvcrt.dll!isalpha" in imports(crt_programs["ctype"]["exe"])


def test_thread_local_variables(crt_programs):
    """__thread in MinGW is emutls (libgcc): TlsAlloc/TlsGetValue and semaphore-based mutexes."""
    assert "KERNEL32.dll!CreateSemaphoreW" in imports(crt_programs["thread_local"]["exe"])
    got = same_as_linux(crt_programs, "thread_local")
    assert got.stdout.startswith("bump 1 -> 41 total 5\nbump 2 -> 43 total 10\nbump 3 -> 46 total 30\n")


def test_setjmp_longjmp_stat_fopen_s_setmode(crt_programs, tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("first line\nsecond\n")
    os.utime(data, (1_000_000_000, 1_234_567_890))
    got = same_as_linux(crt_programs, "jumps_files", str(data))
    assert got.stdout.startswith("longjmp(0) -> setjmp 1, depth 0, kept 5\nlongjmp(1) -> setjmp 1, depth 0, kept 10\n")
    assert "stat 0 size 18 dir 0 reg 1 mtime 1234567890\nmissing -1\n" in got.stdout
    assert got.stdout.endswith("read [first line]\n") and got.returncode == 2


def test_threads_semaphores_critical_sections(crt_programs):
    """CreateThread and _beginthreadex on real threads (their own __thread, DLL_THREAD_ATTACH/DETACH),
    a critical section guarding a shared counter, semaphores, WaitForMultipleObjects, ExitThread from
    nested calls, GetExitCodeThread: the same results as pthreads on Linux."""
    for _ in range(3):  # races show up as different totals from run to run
        got = same_as_linux(crt_programs, "threads")
        assert "shared 200020, main's own 0\n" in got.stdout and "thread 3 exit 77\n" in got.stdout
        assert got.stderr == "thread attach 4 detach 4\n"


@pytest.mark.parametrize("how", ["null", "overflow"])
def test_fault_in_a_thread_is_reported(crt_programs, how):
    """Each thread has its own alternate signal stack: a NULL write or a stack overflow in a
    CreateThread thread is one line and exit 125, like one in the main thread."""
    got = peload(crt_programs["thread_fault"]["exe"], how)
    assert (got.returncode, got.stdout) == (125, "")
    assert re.fullmatch(r"cerebro-peload: thread_fault\.exe crashed: SIGSEGV \((write to|general protection|"
                        r"write to unmapped|write to protected)[^)]*\) at thread_fault\.exe\+0x[0-9a-f]+ "
                        r"\(pc 0x[0-9a-f]+\)\n", got.stderr), got.stderr


def test_load_library_get_proc_address_reach_the_shims(crt_programs):
    got = peload(crt_programs["lookups"]["exe"])
    assert (got.returncode, got.stderr) == (0, "")
    assert got.stdout == ("k32 1 crt 1 same 1, tick 1, strlen 7\n"
                          "nosuch.dll 0000000000000000 error 126\n"
                          "NoSuchFunction 0000000000000000 error 127\n"
                          "self 1, by ordinal 0000000000000000\n")


@pytest.mark.parametrize("case, message", [
    ("wide", "scanf %ls (wide characters) is not supported"),
    ("open-set", "scanf %[ set is not closed"),
    ("many", "scanf with over 32 conversions"),
])
def test_scanf_formats_it_cannot_serve_are_refused(crt_programs, case, message):
    """msvcrt scanf formats the shim cannot translate stop the program with one line, never a
    glibc call with the wrong argument sizes."""
    got = peload(crt_programs["scanf_refused"]["msvcrt"], case)
    assert (got.returncode, got.stdout, got.stderr) == (126, "", f"cerebro-peload: {message}\n")


def test_wide_character_basics(crt_programs):
    """16-bit wchar_t string functions and ASCII wide classification, against the Linux build
    (32-bit wchar_t, same source)."""
    got = same_as_linux(crt_programs, "wide")
    assert got.stdout.startswith("len 18 cmp 0 0 ncmp 0\nchr 4 rchr 13 str 12\nHhEeLlLlOo,,  WwIiDdEe")
    assert got.stdout.endswith("classes 78\nwcstol -1234 rest 7\n")


@pytest.mark.parametrize("name", sorted(set(PROGRAMS) - WINDOWS_ONLY))
def test_ucrt_build_matches_linux(crt_programs, name, tmp_path):
    """Each portable program built on the Universal CRT (its startup, __stdio_common_* printf and
    scanf, __acrt_iob_func, api-ms-win-crt-* names) gives the Linux build's output too."""
    if "ucrt" not in crt_programs[name]:
        pytest.skip("x86_64-w64-mingw32-gcc ships no UCRT import library (libucrt.a)")
    assert any(i.lower().startswith("api-ms-win-crt-stdio") for i in imports(crt_programs[name]["ucrt"]))
    data = tmp_path / "data.txt"
    data.write_text("first line\nsecond\n")
    args = {"numbers": ("2.5e2", "-17.9"), "ctype": ("where is a needle",), "jumps_files": (str(data),),
            "stdio_files": (str(tmp_path),)}
    same_as_linux(crt_programs, name, *args.get(name, ()), stdin=SCANF_INPUT if name == "scanf" else "", exe="ucrt")


def test_files_processes_and_locale(crt_programs, tmp_path):
    """setvbuf, rename, freopen, clearerr, tmpfile, system/_popen/_pclose exit codes, setlocale/strcoll,
    remove, _sopen/_fdopen, _utime64 and _stat64 as on Linux, through MinGW's own printf, which locks
    each FILE inside it (with glibc's FILE handed to the program, that lock was a corrupt critical
    section: exit 126 at the first fprintf). Windows' own rules on stderr: rename never replaces,
    '\\' separates path parts, GetModuleFileNameA names the program that way, FormatMessageA."""
    got = same_as_linux(crt_programs, "stdio_files", str(tmp_path))
    assert got.stdout.startswith("setvbuf 0\nrename 0, old gone 1\nfreopen 1: 42 forty-two 2.500\n")
    assert "system 3 1\npopen [piped\n] close 0\npopen exit 5\nlocale C C, strcoll 1\nremove 0 again -1\n" in got.stdout
    assert got.stdout.endswith("exclusive again -1\nutime 0, stat 0 size 17 mtime 1234567890\nsnprintf 14 [truncat]\n")
    assert got.stderr == ("rename onto a file -1; module path has \\ 1, ends .exe 1; "
                          "[The system cannot find the file specified.]; unknown code 0 317\n")


def test_file_pointer_not_from_fopen_is_refused(crt_programs, tmp_path):
    got = peload(crt_programs["stdio_files"]["exe"], str(tmp_path), "bad-file")
    assert (got.returncode, got.stdout) == (126, "")
    assert got.stderr == "cerebro-peload: a FILE* the program did not get from fopen was passed to a stdio function\n"


def test_classic_programs_of_test_pe_on_ucrt(tmp_path):
    """test_pe.py's argv/printf/env/file program and its fgets/qsort/bsearch/atexit/KERNEL32 one
    (data/files.c), built on the UCRT, match their Linux builds as the msvcrt builds do there."""
    flags = ucrt_flags()
    if flags is None:
        pytest.skip("x86_64-w64-mingw32-gcc ships no UCRT import library (libucrt.a)")
    (tmp_path / "portable.c").write_text(test_pe.PORTABLE)
    (tmp_path / "files.c").write_text((test_pe.DATA / "files.c").read_text())
    for name in ("portable", "files"):
        for out, compiler in ((f"{name}.ucrt", ["x86_64-w64-mingw32-gcc", *flags]), (f"{name}.linux", ["cc"])):
            subprocess.run([*compiler, "-O1", "-o", str(tmp_path / out), str(tmp_path / f"{name}.c")], check=True)
    (tmp_path / "nums.txt").write_text("17\n-3\n42\n1000000\n5\n0\n")
    env = {"CEREBRO_TEST_VAR": "set-by-test", "PATH": "/usr/bin:/bin"}
    for name, args in (("portable", ["nums.txt", "two words"]), ("files", ["nums.txt"])):
        ref = subprocess.run([str(tmp_path / f"{name}.linux"), *args], capture_output=True, text=True, env=env,
                             cwd=tmp_path)
        got = peload(str(tmp_path / f"{name}.ucrt"), *args, env=env, cwd=tmp_path)
        assert (got.stdout, got.stderr, got.returncode) == (ref.stdout, ref.stderr, ref.returncode), name
        assert any(i.startswith("api-ms-win-crt-") for i in imports(str(tmp_path / f"{name}.ucrt")))
    assert "sorted: -3 0 5 17 42 1000000 \n" in got.stdout and got.returncode == 7
