/* Scenario 3, C variant of the probe: open one UDP socket and wait for it to be
 * writable with select(2), the way a program with a plain fd_set would.  The bitmap
 * is sized for 8192 fds so that an fd >= FD_SETSIZE does not corrupt memory here;
 * a program using a real fd_set would write past it (the incident's "garbage").
 * Exit 0: fd < FD_SETSIZE and writable; 3: fd >= FD_SETSIZE (select with
 * nfds > FD_SETSIZE was called anyway); 2: error. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0) { perror("socket"); return 2; }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (bind(s, (struct sockaddr *)&a, sizeof a) || getsockname(s, (struct sockaddr *)&a, &al) ||
        connect(s, (struct sockaddr *)&a, sizeof a)) { perror("bind/connect"); return 2; }
    static unsigned long bits[8192 / (8 * sizeof(unsigned long))];
    if (s >= 8192) { printf("select_probe: fd %d beyond even the big bitmap\n", s); return 2; }
    memset(bits, 0, sizeof bits);
    bits[s / (8 * sizeof(unsigned long))] |= 1UL << (s % (8 * sizeof(unsigned long)));
    struct timeval tv = {2, 0};
    int r = select(s + 1, NULL, (fd_set *)bits, NULL, &tv);
    printf("select_probe: fd %d nfds %d select=%d FD_SETSIZE=%d\n", s, s + 1, r, FD_SETSIZE);
    if (r < 0) { perror("select"); return 2; }
    return s >= FD_SETSIZE ? 3 : (r == 1 ? 0 : 2);
}
