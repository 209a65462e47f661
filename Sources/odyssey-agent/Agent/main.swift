// odyssey-agent: the supervisor inside every domain.
//
// As PID 1 of the domain it reaps every zombie, forwards SIGTERM/SIGINT/SIGHUP
// to the commands it runs, and on SIGTERM (the host's shutdown) stops them
// all and exits, which halts the domain. It connects its control channel
// (qrexec port 512) through the socket vchan to the host and runs the
// commands the host sends (MSG_EXEC_CMDLINE "user:command", via /bin/sh -c,
// as that user), streaming stdio and the exit status over a data channel per
// command. Linked with -static-executable (Swift runtime and glibc inside;
// users come from /etc/passwd, not NSS): it needs nothing from the domain's
// root but /bin/sh and /etc/passwd, and starts in about a millisecond.
//
// Usage: odyssey-agent [--domain NAME] [--no-init]
//   --domain NAME   this domain's name (default: $ODYSSEY_DOMAIN, else the hostname,
//                   which vmm-native sets to the domain's name)
//   --no-init       run as an ordinary process even as PID 1 (also
//                   ODYSSEY_AGENT_NO_INIT=1); implied when not PID 1
//   $VCHAN_SOCKET_DIR  the channel directory (default /run/odyssey/vchan)
//   $ODYSSEY_VCHAN  a VM's channel instead: virtio-serial:/dev/vportNpM or
//                   vsock:CID:PORT (the StreamMux multiplexer; Dialer.swift)
//   $ODYSSEY_RPC_DIRS  service directories, colon-separated (default
//                      /usr/local/etc/qubes-rpc:/etc/qubes-rpc:/etc/odyssey/rpc:
//                      /.odyssey/addons/rpc)
//   $ODYSSEY_AGENT_SOCKET  the local socket ody-call connects to
//                      (default /run/odyssey/qrexec-agent.sock)
// The code lives in Supervisor.swift (top-level code here would be
// main-actor isolated, and the agent's threads are plain pthreads).
Supervisor.main()
