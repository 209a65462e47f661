/* xen-vchan-baseline: raw libxenvchan, the baseline vchan-xen's bars are
 * measured against (make bench-xen), and the echo/sink peer both
 * measurements talk to, so the only difference between the two figures is
 * the measuring end: this program's own libxenvchan calls, or vchan-xen's.
 *
 *   xen-vchan-baseline rtt  PEER_DOMID PORT SIZE COUNT   server; COUNT round trips of SIZE bytes
 *   xen-vchan-baseline bulk PEER_DOMID PORT BYTES        server; BYTES one way, then a 1-byte ack
 *   xen-vchan-baseline echo SERVER_DOMID PORT SIZE COUNT client; echoes COUNT messages of SIZE
 *   xen-vchan-baseline sink SERVER_DOMID PORT BYTES      client; reads BYTES, answers 1 byte
 *
 * The server forks the peer itself when PEER_DOMID is this domain (dom0 to
 * dom0: the grant is to itself). Paths are Qubes' and vchan-xen's:
 * /local/domain/<server>/data/vchan/<client>/<port>; rings of 64 KiB each
 * way, qrexec's size. Prints one line "rtt ... us" or "bulk ... MB/s".
 * Built by `make bench-xen` with cc (it is C: it is the raw
 * library, nothing of Odyssey's). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <libxenvchan.h>
#include <xenstore.h>

#define RING 65536

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what) {
    fprintf(stderr, "xen-vchan-baseline: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int own_domid(void) {
    struct xs_handle *xs = xs_open(0);
    if (!xs) die("xs_open");
    unsigned len = 0;
    char *v = xs_read(xs, XBT_NULL, "domid", &len);
    if (!v) die("xenstore read domid");
    int id = atoi(v);
    free(v);
    xs_close(xs);
    return id;
}

static struct libxenvchan *serve(int peer, int port) {
    char path[128];
    snprintf(path, sizeof path, "data/vchan/%d/%d", peer, port);
    struct libxenvchan *v = libxenvchan_server_init(NULL, peer, path, RING, RING);
    if (!v) die("libxenvchan_server_init");
    v->blocking = 1;
    while (libxenvchan_is_open(v) == 2)
        if (libxenvchan_wait(v) < 0) die("libxenvchan_wait");
    return v;
}

static struct libxenvchan *connect_to(int server, int port) {
    char path[128];
    snprintf(path, sizeof path, "/local/domain/%d/data/vchan/%d/%d", server, own_domid(), port);
    struct libxenvchan *v = NULL;
    for (int i = 0; i < 2000 && !v; i++) { /* the server may not have written its entries yet */
        v = libxenvchan_client_init(NULL, server, path);
        if (!v) usleep(5000);
    }
    if (!v) die("libxenvchan_client_init");
    v->blocking = 1;
    return v;
}

static pid_t spawn_peer(char **argv, const char *mode) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        char self[16];
        snprintf(self, sizeof self, "%d", own_domid());
        argv[1] = (char *)mode;
        argv[2] = self;
        execv("/proc/self/exe", argv);
        die("exec");
    }
    return pid;
}

static void exchange(struct libxenvchan *v, char *buf, size_t size, int count, int send_first) {
    for (int i = 0; i < count; i++) {
        if (send_first && libxenvchan_send(v, buf, size) != (int)size) die("send");
        if (libxenvchan_recv(v, buf, size) != (int)size) die("recv");
        if (!send_first && libxenvchan_send(v, buf, size) != (int)size) die("send");
    }
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: xen-vchan-baseline rtt|echo DOMID PORT SIZE COUNT | bulk|sink DOMID PORT BYTES\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *mode = argv[1];
    int dom = atoi(argv[2]), port = atoi(argv[3]);
    pid_t child = -1;
    if (!strcmp(mode, "rtt") || !strcmp(mode, "bulk")) {
        if (dom == own_domid()) child = spawn_peer(argv, !strcmp(mode, "rtt") ? "echo" : "sink");
        struct libxenvchan *v = serve(dom, port);
        if (!strcmp(mode, "rtt")) {
            size_t size = strtoul(argv[4], NULL, 10);
            int count = argc > 5 ? atoi(argv[5]) : 1000;
            char *buf = calloc(1, size);
            exchange(v, buf, size, 10, 1); /* warm up: the peer echoes count+10 */
            double t0 = now();
            exchange(v, buf, size, count, 1);
            double dt = now() - t0;
            printf("rtt %d x %zu B: %.3f s, %.1f us per round trip\n", count, size, dt, dt / count * 1e6);
        } else {
            size_t total = strtoul(argv[4], NULL, 10), pos = 0;
            char *buf = calloc(1, RING);
            double t0 = now();
            while (pos < total) {
                size_t n = total - pos < RING ? total - pos : RING;
                int w = libxenvchan_write(v, buf, n);
                if (w <= 0) die("write");
                pos += w;
            }
            if (libxenvchan_recv(v, buf, 1) != 1) die("ack");
            double dt = now() - t0;
            printf("bulk %zu B: %.3f s, %.1f MB/s\n", total, dt, total / dt / 1e6);
        }
        libxenvchan_close(v);
        if (child > 0) {
            int st = 0;
            waitpid(child, &st, 0);
            if (!WIFEXITED(st) || WEXITSTATUS(st)) { fprintf(stderr, "xen-vchan-baseline: the peer failed\n"); return 1; }
        }
        return 0;
    }
    struct libxenvchan *v = connect_to(dom, port);
    if (!strcmp(mode, "echo")) {
        size_t size = strtoul(argv[4], NULL, 10);
        int count = argc > 5 ? atoi(argv[5]) : 1000;
        char *buf = calloc(1, size);
        exchange(v, buf, size, count + 10, 0);
    } else if (!strcmp(mode, "sink")) {
        size_t total = strtoul(argv[4], NULL, 10), got = 0;
        char *buf = calloc(1, RING);
        while (got < total) {
            int r = libxenvchan_read(v, buf, RING);
            if (r <= 0) die("read");
            got += r;
        }
        if (libxenvchan_send(v, "A", 1) != 1) die("ack");
        /* stay until the server has the ack and closes */
        while (libxenvchan_is_open(v) == 1) if (libxenvchan_wait(v) < 0) break;
    } else {
        fprintf(stderr, "xen-vchan-baseline: unknown mode %s\n", mode);
        return 2;
    }
    libxenvchan_close(v);
    return 0;
}
