/* Scenario 3: a monitor with a pool of UDP sockets (no CLOEXEC, like the incident's
 * DNS resolver pool) that runs a probe program.
 *
 *   monitor NSOCK fork|system|spawn TIMEOUT_S CMD [ARG...]
 *
 * fork:   fork + execvp(CMD, ARGS)        system: system("CMD ARG...")
 * spawn:  posix_spawnp(CMD, ARGS)
 * Prints "monitor: pool fds A..B" and "monitor: probe exit N" (or "killed after T s");
 * exits with the probe's exit status (124 on timeout). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: monitor NSOCK fork|system|spawn TIMEOUT_S CMD [ARG...]\n");
        return 2;
    }
    int n = atoi(argv[1]);
    const char *how = argv[2];
    double limit = atof(argv[3]);
    char **cmd = argv + 4;

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)n + 64) {
        rl.rlim_cur = rl.rlim_max; /* the pool needs more than the usual 1024 */
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) perror("setrlimit");
    }
    int first = -1, last = -1;
    for (int i = 0; i < n; i++) {
        int s = socket(AF_INET, SOCK_DGRAM, 0); /* no SOCK_CLOEXEC: the bug */
        if (s < 0) { perror("socket"); return 2; }
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(s, (struct sockaddr *)&a, sizeof a) != 0) { perror("bind"); return 2; }
        if (first < 0) first = s;
        last = s;
    }
    printf("monitor: pool of %d udp sockets, fds %d..%d\n", n, first, last);
    fflush(stdout);

    if (strcmp(how, "system") == 0) {
        size_t len = 1;
        for (char **a = cmd; *a; a++) len += strlen(*a) + 1;
        char *line = malloc(len);
        line[0] = 0;
        for (char **a = cmd; *a; a++) {
            if (a != cmd) strcat(line, " ");
            strcat(line, *a);
        }
        /* system() cannot be bounded from here; the probes bound themselves */
        int st = system(line);
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        printf("monitor: probe exit %d\n", code);
        return code;
    }
    pid_t pid;
    if (strcmp(how, "spawn") == 0) {
        int e = posix_spawnp(&pid, cmd[0], NULL, NULL, cmd, environ);
        if (e) { fprintf(stderr, "posix_spawnp: %s\n", strerror(e)); return 2; }
    } else {
        pid = fork();
        if (pid < 0) { perror("fork"); return 2; }
        if (pid == 0) {
            execvp(cmd[0], cmd);
            perror("execvp");
            _exit(127);
        }
    }
    double t0 = now();
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            printf("monitor: probe exit %d\n", code);
            return code;
        }
        if (now() - t0 > limit) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            printf("monitor: probe killed after %.0f s\n", limit);
            return 124;
        }
        usleep(10000);
    }
}
