#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <windows.h>
#endif
static int by_value(const void *a, const void *b) { long x = *(const long *)a, y = *(const long *)b; return (x > y) - (x < y); }
static void bye(void) { printf("atexit handler ran\n"); }
int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: files FILE\n"); return 2; }
    atexit(bye);
    FILE *f = fopen(argv[1], "r");
    if (!f) { printf("cannot open %s\n", argv[1]); exit(4); }
    long *vals = NULL; size_t n = 0, cap = 0; char line[128];
    while (fgets(line, sizeof line, f)) {
        if (n == cap) { cap = cap ? cap * 2 : 2; vals = realloc(vals, cap * sizeof *vals); }
        vals[n++] = strtol(line, NULL, 10);
    }
    fclose(f);
    qsort(vals, n, sizeof *vals, by_value);
    long sum = 0; char buf[256] = "";
    for (size_t i = 0; i < n; i++) { sum += vals[i]; sprintf(buf + strlen(buf), "%ld ", vals[i]); }
    printf("sorted: %s\nsum=%ld n=%d\n", buf, sum, (int)n);
    long key = 42; long *hit = bsearch(&key, vals, n, sizeof *vals, by_value);
    printf("42 %s\n", hit ? "found" : "missing");
#ifdef _WIN32
    char env[64];
    DWORD len = GetEnvironmentVariableA("CEREBRO_TEST_VAR", env, sizeof env);
    const char *msg = "written with WriteFile\n"; DWORD w;
    WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), msg, (DWORD)strlen(msg), &w, NULL);
    printf("env via kernel32: %s (%lu)\n", len ? env : "(unset)", (unsigned long)len);
#else
    const char *env = getenv("CEREBRO_TEST_VAR");
    printf("written with WriteFile\n");
    printf("env via kernel32: %s (%lu)\n", env ? env : "(unset)", (unsigned long)(env ? strlen(env) : 0));
#endif
    free(vals);
    exit(n > 5 ? 7 : 0);
}
