// ody-call: call a qrexec service in another domain, from inside a domain
// (Qubes' qrexec-client-vm). See OdyCall.swift and `ody-call --help`.
// Linked with -static-executable like odyssey-agent: it runs in any domain's
// root with nothing but the agent's socket.
OdyCall.main()
