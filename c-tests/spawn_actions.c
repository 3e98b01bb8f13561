/* posix_spawn with the caller's own file actions: the child holds what they leave
 * it, and only that is the caller's to answer for.
 *
 * usage: spawn_actions CASE PROBE
 *   fd 3: a TCP listener on 127.0.0.1 and fd 4: /dev/null, both inheritable (the
 *   caller's leaks unless an action deals with them); fd 5: a pipe, close-on-exec.
 *   CASE (the actions, in this order):
 *     none        no file actions object at all
 *     empty       an object with no actions
 *     close       addclose(3)
 *     closefrom   addclosefrom_np(3) (glibc >= 2.34)
 *     dup2_away   adddup2(3, 9), addclose(3): the child gets the listener at 9
 *     dup2_self   adddup2(5, 5): the close-on-exec pipe, handed on at its number
 *     open        addopen(12, /dev/null), addclose(3), addclose(4)
 *     full        addclose(3), then 40 more addclose of numbers not open: more
 *                 actions than the shim follows
 *     reinit      addclose(3), addclose(4), destroy, then init again in the same
 *                 place with no actions: the first object's actions are gone
 *     fork        close, in a forked child (not exec'd) that builds the actions and
 *                 spawns; the parent waits for it
 * stdout: port=N, the probe's line, parent=3:F,4:F (F_GETFD after the spawn, -1:
 * closed), status=exit:N */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int listener_at_3(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 4) || getsockname(s, (struct sockaddr *)&a, &l))
        exit(99);
    if (s != 3 && (dup2(s, 3) != 3 || close(s)))
        exit(99);
    return ntohs(a.sin_port);
}

static void at(int want, int fd)
{
    if (fd < 0 || (fd != want && (dup2(fd, want) != want || close(fd))))
        exit(99);
}

static int add_actions(posix_spawn_file_actions_t *fa, const char *c)
{
    int r = 0;
    if (!strcmp(c, "close")) {
        r = posix_spawn_file_actions_addclose(fa, 3);
    } else if (!strcmp(c, "closefrom")) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
        r = posix_spawn_file_actions_addclosefrom_np(fa, 3);
#else
        printf("closefrom=unsupported\n");
        exit(0);
#endif
    } else if (!strcmp(c, "dup2_away")) {
        r = posix_spawn_file_actions_adddup2(fa, 3, 9) || posix_spawn_file_actions_addclose(fa, 3);
    } else if (!strcmp(c, "dup2_self")) {
        r = posix_spawn_file_actions_adddup2(fa, 5, 5);
    } else if (!strcmp(c, "open")) {
        r = posix_spawn_file_actions_addopen(fa, 12, "/dev/null", O_RDONLY, 0) || posix_spawn_file_actions_addclose(fa, 3) ||
            posix_spawn_file_actions_addclose(fa, 4);
    } else if (!strcmp(c, "full")) {
        r = posix_spawn_file_actions_addclose(fa, 3);
        for (int i = 0; i < 40 && !r; i++)
            r = posix_spawn_file_actions_addclose(fa, 100 + i);
    } else if (!strcmp(c, "reinit")) {
        r = posix_spawn_file_actions_addclose(fa, 3) || posix_spawn_file_actions_addclose(fa, 4) || posix_spawn_file_actions_destroy(fa) ||
            posix_spawn_file_actions_init(fa);
    } else if (strcmp(c, "empty")) {
        fprintf(stderr, "unknown case %s\n", c);
        exit(2);
    }
    return r;
}

static int spawn(const char *c, const char *probe)
{
    char *args[] = {(char *)probe, NULL};
    posix_spawn_file_actions_t fa;
    int none = !strcmp(c, "none");
    if (!none && (posix_spawn_file_actions_init(&fa) || add_actions(&fa, c)))
        return 98;
    fflush(stdout);
    pid_t pid;
    int rc = posix_spawn(&pid, probe, none ? NULL : &fa, NULL, args, environ);
    if (!none)
        posix_spawn_file_actions_destroy(&fa);
    if (rc) {
        printf("posix_spawn=%d\n", rc);
        return 97;
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid)
        return 96;
    printf("parent=3:%d,4:%d\n", fcntl(3, F_GETFD), fcntl(4, F_GETFD));
    printf("status=exit:%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    printf("port=%d\n", listener_at_3());
    at(4, open("/dev/null", O_RDONLY));
    int p[2];
    if (pipe2(p, O_CLOEXEC))
        return 99;
    at(5, p[0]);
    if (p[1] != 6)
        at(6, p[1]);
    fcntl(6, F_SETFD, FD_CLOEXEC);
    if (!strcmp(argv[1], "fork")) {
        fflush(stdout);
        pid_t w = fork();
        if (w < 0)
            return 95;
        if (w == 0)
            _exit(spawn("close", argv[2]));
        int st = 0;
        waitpid(w, &st, 0);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 94;
    }
    return spawn(argv[1], argv[2]);
}
