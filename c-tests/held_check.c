/* What a new program is told it holds (EXECGUARD_HELD, beside the marker) against
 * what it holds. Run under stray_launch (fds 10, 251 and 500 from the caller).
 *
 *   held_check OUT          the parent: runs the probe by each way below, one at
 *                           a time, and exits 0 when every one ran
 *   held_check probe OUT CASE [pass]
 *                           the probe: appends one line to OUT,
 *                           {"case":CASE,"held":"<EXECGUARD_HELD or null>","fds":[..]}
 *                           (its fds >= 3, from /proc/self/fd); with "pass" it then
 *                           execs "held_check probe OUT CASE/grandchild", handing
 *                           on everything it holds
 *
 * The ways: fork+exec; posix_spawn; posix_spawn with a file action that opens
 * /dev/null at fd 20 (the audit cannot see what the child gets: no list, and fd 20
 * is the child's inheritance, passed through at its own exec); system(); popen();
 * and fork+exec from a process with a second thread running.
 *
 *   held_check flags OUT    fd 10's close-on-exec flag, learnt by the first fork
 *                           and vfork (postfork/fdgen.rs, `learn`), then set and
 *                           cleared again through fcntl: each fork+exec and
 *                           vfork+exec probe after a change must see it
 *                           (cases flags-fork-N, flags-vfork-N)
 *   held_check marked OUT   execs itself as "held_check vouched OUT": a program
 *                           whose parent's audit vouched for fds 10, 251 and 500
 *                           (EXECGUARD_HELD), which then sets and clears fd 10's
 *                           flag through ioctl FIOCLEX/FIONCLEX and fcntl F_SETFD,
 *                           then fd 500's through close_range CLOSE_RANGE_CLOEXEC
 *                           (where glibc and the kernel have it) and fcntl, with a
 *                           fork+exec and a vfork+exec probe after each (cases
 *                           vouched-fork-N, vouched-vfork-N); then a vfork child
 *                           sets fd 10 close-on-exec itself before its exec
 *                           (vouched-vfork-set), and the next step's probes must
 *                           still get fd 10 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static const char *self;

static int by_number(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

static int probe(const char *out, const char *name, int pass)
{
    char line[4096];
    int n = snprintf(line, sizeof line, "{\"case\":\"%s\",\"held\":", name);
    const char *held = getenv("EXECGUARD_HELD");
    n += held ? snprintf(line + n, sizeof line - n, "\"%s\"", held) : snprintf(line + n, sizeof line - n, "null");
    n += snprintf(line + n, sizeof line - n, ",\"fds\":[");
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 3;
    int first = 1, fds[1024], nfd = 0;
    for (struct dirent *e; (e = readdir(d));) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && fd >= 3 && fd != dirfd(d) && nfd < 1024)
            fds[nfd++] = fd;
    }
    closedir(d);
    qsort(fds, nfd, sizeof *fds, by_number);
    for (int i = 0; i < nfd && n < (int)sizeof line - 16; i++) {
        n += snprintf(line + n, sizeof line - n, "%s%d", first ? "" : ",", fds[i]);
        first = 0;
    }
    n += snprintf(line + n, sizeof line - n, "]}\n");
    int o = open(out, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (o < 0 || write(o, line, n) != n)
        return 4;
    close(o);
    if (pass) {
        char grand[256];
        snprintf(grand, sizeof grand, "%s/grandchild", name);
        execl(self, self, "probe", out, grand, (char *)NULL);
        return 5;
    }
    return 0;
}

static int waited(pid_t pid)
{
    int st = 0;
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* The probe by fork+exec, or by vfork+exec (the child only execs or exits, in
 * this function's frame). */
static int fork_exec_by(const char *out, const char *name, int by_vfork)
{
    pid_t pid = by_vfork ? vfork() : fork();
    if (pid == 0) {
        execl(self, self, "probe", out, name, (char *)NULL);
        _exit(127);
    }
    return waited(pid);
}

static int fork_exec(const char *out, const char *name)
{
    return fork_exec_by(out, name, 0);
}

/* Both ways, named by the step. */
static int both_as(const char *out, const char *prefix, int step)
{
    char a[64], b[64];
    snprintf(a, sizeof a, "%s-fork-%d", prefix, step);
    snprintf(b, sizeof b, "%s-vfork-%d", prefix, step);
    return fork_exec_by(out, a, 0) & fork_exec_by(out, b, 1);
}

static int both(const char *out, int step)
{
    return both_as(out, "flags", step);
}

/* `fd` close-on-exec through close_range (glibc's function: a hook sees it, as a
 * change to many numbers at once), or through fcntl where there is none (musl) or
 * the kernel or a filter refuses. */
static int cloexec_by_range(int fd)
{
#ifdef __GLIBC__
    if (close_range(fd, fd, CLOSE_RANGE_CLOEXEC) == 0)
        return 1;
    if (errno != ENOSYS && errno != EPERM && errno != EINVAL)
        return 0;
#endif
    return fcntl(fd, F_SETFD, FD_CLOEXEC) == 0;
}

/* The vouched program's steps (see the usage above). */
static int vouched(const char *out)
{
    int ok = both_as(out, "vouched", 1);              /* passed on as handed */
    ok &= ioctl(10, FIOCLEX) == 0;
    ok &= both_as(out, "vouched", 2);                 /* closed at exec */
    ok &= ioctl(10, FIONCLEX) == 0;
    ok &= both_as(out, "vouched", 3);
    ok &= fcntl(10, F_SETFD, FD_CLOEXEC) == 0;
    ok &= both_as(out, "vouched", 4);
    ok &= fcntl(10, F_SETFD, 0) == 0;
    ok &= both_as(out, "vouched", 5);
    /* fd 500, untouched so far: only the change to many numbers says it moved. */
    ok &= cloexec_by_range(500);
    ok &= both_as(out, "vouched", 6);
    ok &= fcntl(500, F_SETFD, 0) == 0;
    ok &= both_as(out, "vouched", 7);
    /* A vfork child's own change (in its own fd table, tagged in our memory with
     * its pid): its exec drops fd 10; ours still pass it on. */
    pid_t pid = vfork();
    if (pid == 0) {
        if (fcntl(10, F_SETFD, FD_CLOEXEC) == 0)
            execl(self, self, "probe", out, "vouched-vfork-set", (char *)NULL);
        _exit(127);
    }
    ok &= waited(pid);
    ok &= both_as(out, "vouched", 8);
    printf("status=%s\n", ok ? "ok" : "failed");
    return ok ? 0 : 1;
}

static void *idle(void *arg)
{
    (void)arg;
    pause();
    return NULL;
}

int main(int argc, char **argv)
{
    self = "/proc/self/exe";
    static char exe[4096];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = 0;
        self = exe;
    }
    if (argc >= 4 && strcmp(argv[1], "probe") == 0)
        return probe(argv[2], argv[3], argc > 4 && strcmp(argv[4], "pass") == 0);
    if (argc == 3 && strcmp(argv[1], "marked") == 0) {
        execl(self, self, "vouched", argv[2], (char *)NULL);
        return 127;
    }
    if (argc == 3 && strcmp(argv[1], "vouched") == 0)
        return vouched(argv[2]);
    if (argc == 3 && strcmp(argv[1], "flags") == 0) {
        int ok = both(argv[2], 1);                    /* fd 10 inherited, learnt */
        ok &= fcntl(10, F_SETFD, FD_CLOEXEC) == 0;
        ok &= both(argv[2], 2);                       /* closed at exec */
        ok &= fcntl(10, F_SETFD, 0) == 0;
        ok &= both(argv[2], 3);                       /* passed again */
        printf("status=%s\n", ok ? "ok" : "failed");
        return ok ? 0 : 1;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: held_check OUT | held_check probe OUT CASE [pass]\n");
        return 2;
    }
    const char *out = argv[1];
    int ok = 1;
    ok &= fork_exec(out, "forkexec");

    pid_t pid;
    char *pargs[] = { (char *)self, "probe", (char *)out, "posix_spawn", NULL };
    ok &= posix_spawn(&pid, self, NULL, NULL, pargs, environ) == 0 && waited(pid);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 20, "/dev/null", O_RDONLY, 0);
    char *aargs[] = { (char *)self, "probe", (char *)out, "actions", "pass", NULL };
    ok &= posix_spawn(&pid, self, &fa, NULL, aargs, environ) == 0 && waited(pid);
    posix_spawn_file_actions_destroy(&fa);

    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' probe '%s' system", self, out);
    ok &= system(cmd) == 0;
    snprintf(cmd, sizeof cmd, "'%s' probe '%s' popen", self, out);
    FILE *f = popen(cmd, "r");
    ok &= f && pclose(f) == 0;

    pthread_t t;
    ok &= pthread_create(&t, NULL, idle, NULL) == 0;
    ok &= fork_exec(out, "threaded");
    printf("status=%s\n", ok ? "ok" : "failed");
    return ok ? 0 : 1;
}
