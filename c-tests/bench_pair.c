/* bench_pair: a whole driver run, A/B, run by run.
 *
 *   bench_pair N "CMD ARGS" VARIANT...
 *
 * Runs CMD (for instance "./bench_spawn forkexec 100 0", from target/bench) once
 * per VARIANT per round, N rounds, the variants in a rotating order, and prints
 * per variant the median CPU time (user + system, from wait4: CMD and everything it
 * reaped) and the median of its per-round ratio to the first variant. A finer
 * instrument than scripts/bench for one question at a time; compile with
 * `cc -O2 -o bench_pair c-tests/bench_pair.c` and run it without a preload.
 *
 * VARIANT is [WHERE:]LIB[|NAME=VALUE...]:
 *   LIB    a preload library for CMD, or "none"
 *   WHERE  "clean": CMD starts with fds 0-2 only; "strays": with /dev/null at fd 10
 *          and a pipe's write end at fd 251 besides (what a terminal or a CI runner
 *          often leaves open); default: whatever this process holds
 *   NAME=VALUE  more environment for CMD (EXECGUARD_MODE=fix, ...)
 * LD_PRELOAD and EXECGUARD_* of this process's environment are not passed on.
 *
 * With 4 variants "empty, calls, fix, first" it also prints the bench's first-report
 * formula (v3 - v2) / (v1 - v0), paired by round. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

enum { AS_IS, CLEAN, STRAYS };

struct variant {
    const char *label;
    char **env;
    int where;
};

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    double *c = malloc(n * sizeof *c);
    memcpy(c, v, n * sizeof *c);
    qsort(c, n, sizeof *c, cmp);
    double m = c[n / 2];
    free(c);
    return m;
}

static struct variant parse(char *spec)
{
    struct variant v = { .label = strdup(spec), .where = AS_IS };
    if (strncmp(spec, "clean:", 6) == 0) {
        v.where = CLEAN;
        spec += 6;
    } else if (strncmp(spec, "strays:", 7) == 0) {
        v.where = STRAYS;
        spec += 7;
    }
    int n = 0;
    while (environ[n])
        n++;
    v.env = calloc(n + 64, sizeof *v.env);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) && strncmp(environ[i], "EXECGUARD_", 10))
            v.env[k++] = environ[i];
    char *lib = strtok(spec, "|");
    if (lib && strcmp(lib, "none")) {
        char *e = malloc(strlen(lib) + 16);
        sprintf(e, "LD_PRELOAD=%s", lib);
        v.env[k++] = e;
    }
    for (char *p; (p = strtok(NULL, "|")) && k < n + 63;)
        v.env[k++] = p;
    return v;
}

/* One run of CMD under variant v: its CPU time in µs, or -1. */
static double run(char **argv, const struct variant *v, int strays_pipe)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (v->where == CLEAN)
        posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (v->where == STRAYS) {
        /* The pipe onto 251 first (its end here is CLOEXEC), then everything else
         * above 2 closed (a close action on a closed fd is no error), then fd 10. */
        posix_spawn_file_actions_adddup2(&fa, strays_pipe, 251);
        for (int fd = 3; fd < 251; fd++)
            posix_spawn_file_actions_addclose(&fa, fd);
        posix_spawn_file_actions_addclosefrom_np(&fa, 252);
        posix_spawn_file_actions_addopen(&fa, 10, "/dev/null", O_RDONLY, 0);
    }
    pid_t pid;
    int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, v->env);
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0)
        return -1;
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_pair N \"CMD ARGS\" [clean:|strays:]LIB[|NAME=VALUE...]...\n");
        return 2;
    }
    int rounds = atoi(argv[1]);
    char *cmd = strdup(argv[2]), *av[64];
    int ac = 0;
    for (char *t = strtok(cmd, " "); t && ac < 63; t = strtok(NULL, " "))
        av[ac++] = t;
    av[ac] = NULL;
    int nv = argc - 3;
    struct variant *vs = calloc(nv, sizeof *vs);
    for (int i = 0; i < nv; i++)
        vs[i] = parse(strdup(argv[3 + i]));
    int p[2];
    if (rounds < 1 || ac == 0 || pipe2(p, O_CLOEXEC) != 0)
        return 2;
    double *cpu = calloc((size_t)rounds * nv, sizeof *cpu);
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < nv; i++) {
            int v = (i + r) % nv;
            double t = run(av, &vs[v], p[1]);
            if (t < 0) {
                fprintf(stderr, "bench_pair: %s failed under %s\n", argv[2], vs[v].label);
                return 1;
            }
            cpu[r * nv + v] = t;
        }
    double *col = calloc(rounds, sizeof *col), *rat = calloc(rounds, sizeof *rat);
    for (int v = 0; v < nv; v++) {
        for (int r = 0; r < rounds; r++) {
            col[r] = cpu[r * nv + v];
            rat[r] = cpu[r * nv + v] / cpu[r * nv];
        }
        printf("%-60.60s cpu median %10.0f us  ratio %.4f\n", vs[v].label, median(col, rounds), median(rat, rounds));
    }
    if (nv == 4) {
        for (int r = 0; r < rounds; r++)
            rat[r] = (cpu[r * nv + 3] - cpu[r * nv + 2]) / (cpu[r * nv + 1] - cpu[r * nv]);
        printf("first-report ratio (v3 - v2) / (v1 - v0): %.3f\n", median(rat, rounds));
    }
    return 0;
}
