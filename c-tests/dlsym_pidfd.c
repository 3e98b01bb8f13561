/* What a program that probes for glibc 2.39's pidfd_spawn finds (issue 13): the
 * shim exports its hooks only as pidfd_spawn@GLIBC_2.39 and pidfd_spawnp@GLIBC_2.39,
 * non-default versions, so that a lookup without a version (dlsym, as Rust's std
 * and many C programs probe) finds libc's where libc has one and nothing where it
 * has not, with or without the shim.
 *
 * usage: dlsym_pidfd
 *   stdout, one line each for pidfd_spawn and pidfd_spawnp:
 *   NAME dlsym=none|LIBRARY dlvsym=none|LIBRARY call=-|0|ERRNO
 *   LIBRARY: the file name of the object defining what was found (dladdr);
 *   call: what the function dlvsym found returns for a spawn of /bin/true (its
 *   child waited for), "-" when it found none. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
typedef int (*spawn_fn)(int *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
                        char *const[], char *const[]);

static const char *owner(void *p) {
    Dl_info info;
    if (!p)
        return "none";
    if (!dladdr(p, &info) || !info.dli_fname)
        return "unknown";
    const char *slash = strrchr(info.dli_fname, '/');
    return slash ? slash + 1 : info.dli_fname;
}

int main(void) {
    const char *names[] = {"pidfd_spawn", "pidfd_spawnp"};
    for (int i = 0; i < 2; i++) {
        void *any = dlsym(RTLD_DEFAULT, names[i]);
        void *versioned = dlvsym(RTLD_DEFAULT, names[i], "GLIBC_2.39");
        printf("%s dlsym=%s", names[i], owner(any));
        printf(" dlvsym=%s call=", owner(versioned));
        if (!versioned) {
            printf("-\n");
            continue;
        }
        char *argv[] = {"true", NULL};
        int pidfd = -1;
        int r = ((spawn_fn)versioned)(&pidfd, i ? "true" : "/bin/true", NULL, NULL, argv, environ);
        if (r) {
            printf("%s\n", strerrorname_np(r));
            continue;
        }
        siginfo_t si;
        waitid(P_ALL, 0, &si, WEXITED);
        close(pidfd);
        printf("0\n");
    }
    return 0;
}
