/*
 * berth's pod infra process: it holds the pod's namespaces (network, IPC,
 * UTS, and pid with --share pid) and does nothing else. As Kubernetes'
 * pause and podman's catatonit -P: SIGINT/SIGTERM end it, and as pid 1 of
 * a shared pid namespace it reaps the orphans reparented to it (SIGCHLD
 * ignored explicitly: the kernel reaps them).
 *
 * Built static by crates/engine/build.rs and stored as the one file of the
 * image localhost/berth-pause (berth itself is dynamically linked and could
 * not run in an empty root filesystem).
 */
#include <signal.h>
#include <string.h>
#include <unistd.h>

static void stop(int sig) {
    (void)sig;
    _exit(0);
}

int main(int argc, char **argv) {
    struct sigaction sa;
    (void)argc;
    (void)argv;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = SA_NOCLDWAIT;
    sigaction(SIGCHLD, &sa, NULL);
    for (;;)
        pause();
}
