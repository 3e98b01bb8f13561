/* bench_ab: process start, A/B, child by child.
 *
 *   bench_ab N TARGET VARIANT...
 *
 * Each VARIANT is "none" (no preload) or a preload library path, optionally followed
 * by ",NAME=VALUE" for one more environment entry (e.g. "lib.so,EXECGUARD_MODE=off").
 * TARGET (a path, then any arguments, separated by spaces) is posix_spawned N times per variant (after 20 untimed rounds), the
 * variants taking turns child by child; each child's CPU time (user + system) comes
 * from wait4, its wall time from the spawn to the reap. Prints, per variant, the
 * median, mean and first quartile of both, the mean user part of the CPU
 * time, and the mean count of minor page faults per child. The driver itself must run without a
 * preload. A finer instrument than scripts/bench for one question at a time (is
 * this build's start cheaper than that one's?); docs/performance.md cites it. */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static char **variant_env(const char *spec) {
    size_t k = 0;
    while (environ[k]) k++;
    char **e = calloc(k + 3, sizeof *e);
    if (!e) exit(1);
    size_t j = 0;
    for (size_t i = 0; i < k; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0) e[j++] = environ[i];
    char *copy = strdup(spec);
    char *extra = copy ? strchr(copy, ',') : NULL;
    if (extra) {
        *extra++ = 0;
        e[j++] = extra;
    }
    if (copy && strcmp(copy, "none") != 0) {
        size_t len = strlen(copy) + 12;
        char *s = malloc(len);
        if (!s) exit(1);
        snprintf(s, len, "LD_PRELOAD=%s", copy);
        e[j++] = s;
    }
    e[j] = NULL;
    return e;
}

int main(int argc, char **argv) {
    if (argc < 4 || atoi(argv[1]) < 1) {
        fprintf(stderr, "usage: %s N TARGET VARIANT...\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]), nv = argc - 3;
    const char *target = argv[2];
    double *cpu = calloc((size_t)n * nv, sizeof *cpu), *wall = calloc((size_t)n * nv, sizeof *wall);
    double *flt = calloc((size_t)nv, sizeof *flt), *usr = calloc((size_t)nv, sizeof *usr);
    char ***envs = calloc((size_t)nv, sizeof *envs);
    if (!cpu || !wall || !flt || !usr || !envs) return 1;
    for (int v = 0; v < nv; v++) envs[v] = variant_env(argv[3 + v]);
    /* TARGET may carry arguments, separated by spaces. */
    char *args[32], *words = strdup(target);
    int na = 0;
    for (char *w = strtok(words, " "); w && na < 31; w = strtok(NULL, " ")) args[na++] = w;
    args[na] = NULL;
    if (na == 0) return 2;
    target = args[0];
    for (int i = -20; i < n; i++) {
        for (int k = 0; k < nv; k++) {
            int v = ((i + k) % nv + nv) % nv;
            struct timespec a, b;
            clock_gettime(CLOCK_MONOTONIC, &a);
            pid_t pid;
            if (posix_spawn(&pid, target, NULL, NULL, args, envs[v]) != 0) return 1;
            int st;
            struct rusage ru;
            if (wait4(pid, &st, 0, &ru) != pid) return 1;
            clock_gettime(CLOCK_MONOTONIC, &b);
            if (i < 0) continue;
            cpu[v * n + i] = ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1e6 + ru.ru_stime.tv_usec;
            wall[v * n + i] = (b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3;
            flt[v] += (double)ru.ru_minflt;
            usr[v] += ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec;
        }
    }
    for (int v = 0; v < nv; v++) {
        double *c = cpu + (size_t)v * n, *w = wall + (size_t)v * n, sc = 0, sw = 0;
        for (int i = 0; i < n; i++) {
            sc += c[i];
            sw += w[i];
        }
        qsort(c, (size_t)n, sizeof *c, cmp);
        qsort(w, (size_t)n, sizeof *w, cmp);
        printf("%-50s cpu med %7.1f mean %7.1f p25 %7.1f | wall med %7.1f mean %7.1f p25 %7.1f | user mean %.1f | faults %.2f\n", argv[3 + v],
               c[n / 2], sc / n, c[n / 4], w[n / 2], sw / n, w[n / 4], usr[v] / n, flt[v] / n);
    }
    return 0;
}
