/* Test data for tests/ci_reports.rs: a worker thread blocks SIGALRM (as uWSGI's
 * threads do) and starts /bin/true from that thread, so the child starts with
 * SIGALRM blocked: the exec_sigmask that CI reports must point back here. */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void *worker(void *arg) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &s, NULL); /* EG-BLOCK: the mask the child inherits */
    pid_t p = fork();
    if (p == 0) {
        execl("/bin/true", "true", (char *)0);
        _exit(127);
    }
    int st = 0;
    waitpid(p, &st, 0);
    *(int *)arg = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
    return NULL;
}

int main(void) {
    pthread_t t;
    int rc = 1;
    if (pthread_create(&t, NULL, worker, &rc) != 0)
        return 2;
    pthread_join(t, NULL);
    return rc;
}
