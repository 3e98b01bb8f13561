/* The race documented in docs/policy.md: in fix mode the shim marks a caller's
 * leaked fds close-on-exec for the duration of posix_spawn. Meanwhile another thread
 * fork+execs children that keep that same fd on purpose — one by clearing its
 * CLOEXEC in the child (fcntl), one by dup2 onto fd 50 — and each child checks the fd
 * it was meant to get. None may lose it, every posix_spawn must succeed, and the
 * caller's flag must be back to "inherit" at the end.
 *
 * usage: spawn_race ROUNDS
 * stdout: spawned=N kept=N lost=N flag_after=N */
#define _GNU_SOURCE
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static int L;
static int rounds;
static int spawned;

static void *spawner(void *arg)
{
    (void)arg;
    for (int i = 0; i < rounds; i++) {
        pid_t pid;
        char *argv[] = {"true", NULL};
        if (posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ) == 0) {
            int st;
            waitpid(pid, &st, 0);
            spawned++;
        }
    }
    return NULL;
}

/* Child: make L inheritable on purpose (two ways), then ask test(1) about it. */
static int keeps(int how)
{
    pid_t pid = fork();
    if (pid == 0) {
        char path[64];
        if (how == 0) {
            fcntl(L, F_SETFD, 0);
            snprintf(path, sizeof path, "/proc/self/fd/%d", L);
        } else {
            dup2(L, 50);
            snprintf(path, sizeof path, "/proc/self/fd/50");
        }
        execl("/usr/bin/test", "test", "-e", path, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(int argc, char **argv)
{
    rounds = argc > 1 ? atoi(argv[1]) : 200;
    L = socket(AF_INET, SOCK_STREAM, 0); /* leaked: no SOCK_CLOEXEC */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    if (bind(L, (void *)&a, sizeof a) || listen(L, 4))
        return 2;
    pthread_t t;
    pthread_create(&t, NULL, spawner, NULL);
    int kept = 0, lost = 0;
    for (int i = 0; i < rounds; i++) {
        if (keeps(i & 1))
            kept++;
        else
            lost++;
    }
    pthread_join(t, NULL);
    printf("spawned=%d kept=%d lost=%d flag_after=%d\n", spawned, kept, lost, fcntl(L, F_GETFD));
    return 0;
}
