// The golden table: policy text + request -> decision, in the compact form of
// `Fixtures.summarize`. Expected values follow the reference semantics described in
// shared/reference/qrexec-policy.md.

struct GoldenCase {
    let policy: String
    let call: String
    let source: String
    let target: String
    let expected: String
    let note: String

    init(_ policy: String, _ call: String, _ source: String, _ target: String, _ expected: String, _ note: String = "") {
        self.policy = policy
        self.call = call
        self.source = source
        self.target = target
        self.expected = expected
        self.note = note
    }
}

enum GoldenCases {
    static let anyFromWork =
        "[@dispvm:default-dvm,@dispvm:other-dvm,default-dvm,disp1,fedora,nodefault,other-dvm,personal,sys-net,vault]"
    static let anyFromVault =
        "[@dispvm:default-dvm,@dispvm:other-dvm,default-dvm,disp1,fedora,nodefault,other-dvm,personal,sys-net,work]"

    static let serviceAndArgument: [GoldenCase] = {
        let exact = "svc +arg @anyvm @anyvm allow"
        let anyArgument = "svc * @anyvm @anyvm allow"
        let emptyArgument = "svc + @anyvm @anyvm allow"
        let everything = "* * @anyvm @anyvm allow"
        return [
            GoldenCase(exact, "svc+arg", "work", "personal", "allow personal @1"),
            GoldenCase(exact, "svc", "work", "personal", "deny", "no + means argument +"),
            GoldenCase(exact, "svc+", "work", "personal", "deny"),
            GoldenCase(exact, "svc+other", "work", "personal", "deny"),
            GoldenCase(exact, "svc+ARG", "work", "personal", "deny", "arguments are case-sensitive"),
            GoldenCase(exact, "Svc+arg", "work", "personal", "deny", "services are case-sensitive"),
            GoldenCase(exact, "svc2+arg", "work", "personal", "deny"),
            GoldenCase(exact, "svc+arg+more", "work", "personal", "deny", "split at the first +"),
            GoldenCase(anyArgument, "svc", "work", "personal", "allow personal @1"),
            GoldenCase(anyArgument, "svc+", "work", "personal", "allow personal @1"),
            GoldenCase(anyArgument, "svc+x.y-z_1", "work", "personal", "allow personal @1"),
            GoldenCase(anyArgument, "svc.other", "work", "personal", "deny"),
            GoldenCase(emptyArgument, "svc", "work", "personal", "allow personal @1", "svc and svc+ are one call"),
            GoldenCase(emptyArgument, "svc+", "work", "personal", "allow personal @1"),
            GoldenCase(emptyArgument, "svc+x", "work", "personal", "deny"),
            GoldenCase(everything, "anything+at-all", "work", "personal", "allow personal @1"),
            GoldenCase(everything, "qubes.Filecopy", "vault", "work", "allow work @1"),
            GoldenCase("svc +a @anyvm @anyvm deny\nsvc * @anyvm @anyvm allow", "svc+a", "work", "vault", "deny @1"),
            GoldenCase("svc +a @anyvm @anyvm deny\nsvc * @anyvm @anyvm allow", "svc+b", "work", "vault",
                       "allow vault @2"),
            GoldenCase("other * @anyvm @anyvm deny\n* * @anyvm @anyvm allow", "svc", "work", "vault", "allow vault @2",
                       "index merges * rules with the service's rules in order"),
        ]
    }()

    static let sources: [GoldenCase] = [
        GoldenCase("svc * work @anyvm allow", "svc", "work", "personal", "allow personal @1"),
        GoldenCase("svc * work @anyvm allow", "svc", "personal", "vault", "deny"),
        GoldenCase("svc * work @anyvm allow", "svc", "uuid:\(Fixtures.uuid(1))", "personal", "allow personal @1",
                   "a source given by uuid matches its name"),
        GoldenCase("svc * uuid:\(Fixtures.uuid(1)) @anyvm allow", "svc", "work", "personal", "allow personal @1"),
        GoldenCase("svc * uuid:\(Fixtures.uuid(1)) @anyvm allow", "svc", "personal", "work", "deny"),
        GoldenCase("svc * dom0 @anyvm allow", "svc", "dom0", "work", "allow work @1"),
        GoldenCase("svc * dom0 @anyvm allow", "svc", "work", "personal", "deny"),
        GoldenCase("svc * @adminvm @anyvm allow", "svc", "dom0", "work", "allow work @1"),
        GoldenCase("svc * @adminvm @anyvm allow", "svc", "sys-net", "work", "deny"),
        GoldenCase("svc * uuid:00000000-0000-0000-0000-000000000000 @anyvm allow", "svc", "dom0", "work",
                   "allow work @1", "the all-zero uuid is dom0"),
        GoldenCase("svc * @anyvm @anyvm allow", "svc", "dom0", "work", "deny", "@anyvm never matches dom0"),
        GoldenCase("svc * @anyvm @anyvm allow", "svc", "work", "personal", "allow personal @1"),
        GoldenCase("svc * * @anyvm allow", "svc", "dom0", "work", "allow work @1"),
        GoldenCase("svc * * @anyvm allow", "svc", "vault", "work", "allow work @1"),
        GoldenCase("svc * @type:AdminVM @anyvm allow", "svc", "dom0", "work", "allow work @1"),
        GoldenCase("svc * @type:AdminVM @anyvm allow", "svc", "work", "personal", "deny"),
        GoldenCase("svc * @type:AppVM @anyvm allow", "svc", "work", "personal", "allow personal @1"),
        GoldenCase("svc * @type:AppVM @anyvm allow", "svc", "dom0", "work", "deny"),
        GoldenCase("svc * @type:TemplateVM @anyvm allow", "svc", "fedora", "work", "allow work @1"),
        GoldenCase("svc * @tag:work @anyvm allow", "svc", "work", "personal", "allow personal @1"),
        GoldenCase("svc * @tag:work @anyvm allow", "svc", "hidden", "personal", "allow personal @1"),
        GoldenCase("svc * @tag:work @anyvm allow", "svc", "personal", "work", "deny"),
        GoldenCase("svc * @tag:nosuchtag @anyvm allow", "svc", "work", "personal", "deny"),
        GoldenCase("svc * @dispvm:default-dvm @anyvm allow", "svc", "default-dvm", "work", "deny",
                   "@dispvm:X as source never matches"),
        GoldenCase("svc * @dispvm:default-dvm @anyvm allow", "svc", "work", "personal", "deny"),
        GoldenCase("svc * @dispvm:@tag:dvm @anyvm allow", "svc", "default-dvm", "work", "deny"),
        GoldenCase("svc * ghost @anyvm allow", "svc", "ghost", "work", "allow work @1",
                   "an unknown source still equals its name"),
        GoldenCase("svc * @anyvm @anyvm allow", "svc", "ghost", "work", "allow work @1"),
        GoldenCase("svc * @tag:work @anyvm allow", "svc", "ghost", "work", "deny"),
        GoldenCase("svc * @type:AppVM @anyvm allow", "svc", "ghost", "work", "deny"),
    ]

    static let targets: [GoldenCase] = [
        GoldenCase("svc * @anyvm personal allow", "svc", "work", "personal", "allow personal @1"),
        GoldenCase("svc * @anyvm personal allow", "svc", "work", "vault", "deny"),
        GoldenCase("svc * @anyvm personal allow", "svc", "work", "ghost", "deny", "unknown target is @default"),
        GoldenCase("svc * @anyvm @default allow target=personal", "svc", "work", "ghost", "allow personal @1"),
        GoldenCase("svc * @anyvm @default allow target=personal", "svc", "work", "", "allow personal @1"),
        GoldenCase("svc * @anyvm @default allow target=personal", "svc", "work", "@default", "allow personal @1"),
        GoldenCase("svc * @anyvm @default allow target=personal", "svc", "work", "vault", "deny"),
        GoldenCase("svc * @anyvm personal allow", "svc", "work", "uuid:\(Fixtures.uuid(2))", "allow personal @1",
                   "a target given by uuid matches its name"),
        GoldenCase("svc * @anyvm uuid:\(Fixtures.uuid(2)) allow", "svc", "work", "personal", "allow personal @1"),
        GoldenCase("svc * @anyvm uuid:\(Fixtures.uuid(2)) allow", "svc", "work", "vault", "deny"),
        GoldenCase("svc * @anyvm personal allow", "svc", "work", "uuid:\(Fixtures.uuid(99))", "deny",
                   "unknown uuid is @default"),
        GoldenCase("svc * @anyvm dom0 allow", "svc", "work", "dom0", "allow dom0 @1"),
        GoldenCase("svc * @anyvm dom0 allow", "svc", "work", "@adminvm", "allow dom0 @1"),
        GoldenCase("svc * @anyvm dom0 allow", "svc", "work", "uuid:00000000-0000-0000-0000-000000000000",
                   "allow dom0 @1"),
        GoldenCase("svc * @anyvm @adminvm allow", "svc", "work", "dom0", "allow dom0 @1"),
        GoldenCase("svc * @anyvm @adminvm allow", "svc", "work", "@adminvm", "allow dom0 @1"),
        GoldenCase("svc * @anyvm @adminvm allow", "svc", "work", "personal", "deny"),
        GoldenCase("svc * @anyvm @anyvm allow", "svc", "work", "dom0", "deny", "@anyvm excludes dom0"),
        GoldenCase("svc * @anyvm @anyvm allow", "svc", "work", "@adminvm", "deny"),
        GoldenCase("svc * @anyvm @anyvm allow", "svc", "work", "", "deny @1",
                   "@anyvm matches @default, then allow has no target"),
        GoldenCase("svc * @anyvm @anyvm allow", "svc", "work", "@dispvm", "allow @dispvm:default-dvm @1",
                   "@anyvm matches @dispvm"),
        GoldenCase("svc * @anyvm @anyvm allow", "svc", "work", "@dispvm:other-dvm", "allow @dispvm:other-dvm @1"),
        GoldenCase("svc * @anyvm * allow", "svc", "work", "dom0", "allow dom0 @1"),
        GoldenCase("svc * @anyvm * allow", "svc", "work", "@dispvm", "allow @dispvm:default-dvm @1"),
        GoldenCase("svc * @anyvm * allow", "svc", "work", "@default", "deny @1"),
        GoldenCase("svc * @anyvm @type:AdminVM allow", "svc", "work", "dom0", "allow dom0 @1",
                   "@type:AdminVM matches dom0"),
        GoldenCase("svc * @anyvm @type:AdminVM allow", "svc", "work", "@adminvm", "deny",
                   "but not the keyword @adminvm"),
        GoldenCase("svc * @anyvm @type:AdminVM allow", "svc", "work", "uuid:00000000-0000-0000-0000-000000000000",
                   "allow dom0 @1"),
        GoldenCase("svc * @anyvm @type:TemplateVM allow", "svc", "work", "fedora", "allow fedora @1"),
        GoldenCase("svc * @anyvm @type:AppVM allow", "svc", "work", "@dispvm", "deny"),
        GoldenCase("svc * @anyvm @tag:personal allow", "svc", "work", "personal", "allow personal @1"),
        GoldenCase("svc * @anyvm @tag:personal allow", "svc", "work", "vault", "deny"),
        GoldenCase("svc * @anyvm @tag:dvm allow", "svc", "work", "@dispvm:default-dvm", "deny",
                   "@tag never matches @dispvm:X"),
        GoldenCase("svc * @anyvm @tag:work allow", "svc", "work", "@default", "deny"),
        GoldenCase("svc * @anyvm @dispvm allow", "svc", "work", "@dispvm", "allow @dispvm:default-dvm @1"),
        GoldenCase("svc * @anyvm @dispvm allow", "svc", "personal", "@dispvm", "allow @dispvm:other-dvm @1"),
        GoldenCase("svc * @anyvm @dispvm allow", "svc", "work", "@dispvm:default-dvm", "deny",
                   "@dispvm matches only the literal @dispvm"),
        GoldenCase("svc * @anyvm @dispvm allow", "svc", "vault", "@dispvm", "deny @1", "no default_dispvm"),
        GoldenCase("svc * @anyvm @dispvm:default-dvm allow", "svc", "work", "@dispvm:default-dvm",
                   "allow @dispvm:default-dvm @1"),
        GoldenCase("svc * @anyvm @dispvm:default-dvm allow", "svc", "work", "@dispvm:uuid:\(Fixtures.uuid(4))",
                   "allow @dispvm:default-dvm @1"),
        GoldenCase("svc * @anyvm @dispvm:default-dvm allow", "svc", "work", "@dispvm", "allow @dispvm:default-dvm @1",
                   "@dispvm resolved through default_dispvm"),
        GoldenCase("svc * @anyvm @dispvm:default-dvm allow", "svc", "personal", "@dispvm", "deny"),
        GoldenCase("svc * @anyvm @dispvm:default-dvm allow", "svc", "work", "@dispvm:other-dvm", "deny"),
        GoldenCase("svc * @anyvm @dispvm:@tag:dvm allow", "svc", "work", "@dispvm:default-dvm",
                   "allow @dispvm:default-dvm @1"),
        GoldenCase("svc * @anyvm @dispvm:@tag:dvm allow", "svc", "work", "@dispvm", "allow @dispvm:default-dvm @1"),
        GoldenCase("svc * @anyvm @dispvm:@tag:dvm allow", "svc", "personal", "@dispvm", "deny"),
        GoldenCase("svc * @anyvm @dispvm:@tag:dvm allow", "svc", "work", "@dispvm:other-dvm", "deny"),
        GoldenCase("svc * @anyvm @dispvm:@tag:dvm allow", "svc", "sys-net", "@dispvm", "deny",
                   "default_dispvm is not a template"),
        GoldenCase("svc * @anyvm @dispvm:@tag:dvm allow", "svc", "work", "default-dvm", "deny"),
        GoldenCase("svc * @anyvm @default allow target=work", "svc", "personal", "@dispvm", "deny"),
    ]

    static let refusedRequests: [GoldenCase] = {
        let open = "* * * * allow"
        return [
            GoldenCase(open, "svc", "work", "@dispvm:vault", "deny", "not a disposable template"),
            GoldenCase(open, "svc", "work", "@dispvm:ghost", "deny"),
            GoldenCase(open, "svc", "work", "@dispvm:", "deny"),
            GoldenCase(open, "svc", "work", "@anyvm", "deny"),
            GoldenCase(open, "svc", "work", "*", "deny"),
            GoldenCase(open, "svc", "work", "@tag:work", "deny"),
            GoldenCase(open, "svc", "work", "@type:AppVM", "deny"),
            GoldenCase(open, "svc", "work", "@dispvm:@tag:dvm", "deny"),
            GoldenCase(open, "svc", "work", "@bogus", "deny"),
            GoldenCase(open, "svc", "work", "personal", "allow personal @1"),
            GoldenCase(open, "svc", "work", "work", "deny @1", "loopback"),
            GoldenCase(open, "svc", "dom0", "dom0", "deny @1", "loopback"),
            GoldenCase(open, "svc", "dom0", "@adminvm", "deny @1", "loopback"),
            GoldenCase(open, "svc", "work", "uuid:\(Fixtures.uuid(1))", "deny @1", "loopback by uuid"),
            GoldenCase("svc * @anyvm @default allow target=work", "svc", "work", "", "deny @1",
                       "loopback after redirect"),
        ]
    }()

    /// Where the reference fails, the call is refused and later rules are not read.
    static let crashes: [GoldenCase] = [
        GoldenCase("svc * @anyvm @dispvm:default-dvm deny\nsvc * @anyvm @dispvm allow target=work",
                   "svc", "vault", "@dispvm", "deny", "@dispvm:X meets @dispvm without default_dispvm"),
        GoldenCase("svc * @anyvm @dispvm:@tag:dvm deny\nsvc * @anyvm @dispvm allow target=work",
                   "svc", "vault", "@dispvm", "deny"),
        GoldenCase("svc * @anyvm @dispvm:@tag:dvm deny\nsvc * @anyvm @dispvm allow target=work",
                   "svc", "nodefault", "@dispvm", "deny", "default_dispvm names a missing domain"),
        GoldenCase("svc * @anyvm @dispvm:default-dvm deny\nsvc * @anyvm @dispvm allow target=work",
                   "svc", "nodefault", "@dispvm", "allow work @2", "plain @dispvm:X compares names only"),
        GoldenCase("svc * work @dispvm:default-dvm deny\nsvc * @anyvm @dispvm allow target=work",
                   "svc", "vault", "@dispvm", "allow work @2", "target not read when the source differs"),
        GoldenCase("svc +x @anyvm @dispvm:default-dvm deny\nsvc * @anyvm @dispvm allow target=work",
                   "svc+y", "vault", "@dispvm", "allow work @2"),
        GoldenCase("svc * @anyvm @dispvm:ghost deny\nsvc * @anyvm @anyvm ask", "svc", "work", "personal", "deny @2",
                   "ask collection expands @dispvm:X of a missing domain"),
        GoldenCase("svc * @anyvm @dispvm:other-dvm deny\nsvc * @anyvm @anyvm ask", "svc", "work", "personal",
                   "ask [@dispvm:default-dvm,default-dvm,disp1,fedora,nodefault,other-dvm,personal,sys-net,vault] @2"),
        GoldenCase("svc * @anyvm @anyvm ask target=ghost autostart=no", "svc", "work", "personal", "deny @1"),
        GoldenCase("svc * @anyvm @anyvm ask target=ghost", "svc", "work", "personal", "ask [ghost] @1"),
    ]

    static let actions: [GoldenCase] = [
        GoldenCase("svc * @anyvm @anyvm allow user=alice", "svc", "work", "personal", "allow personal user=alice @1"),
        GoldenCase("svc * @anyvm @anyvm allow user=", "svc", "work", "personal", "allow personal @1",
                   "an empty user is the default user"),
        GoldenCase("svc * @anyvm @anyvm allow notify=yes", "svc", "work", "personal", "allow personal notify @1"),
        GoldenCase("svc * @anyvm @anyvm allow notify=no", "svc", "work", "personal", "allow personal @1"),
        GoldenCase("svc * @anyvm @anyvm deny", "svc", "work", "personal", "deny @1"),
        GoldenCase("svc * @anyvm @anyvm deny notify=no", "svc", "work", "personal", "deny @1 quiet"),
        GoldenCase("svc * @anyvm @anyvm deny notify=yes", "svc", "work", "personal", "deny @1"),
        GoldenCase("svc * @anyvm @anyvm allow autostart=no", "svc", "work", "personal", "deny @1 quiet",
                   "halted target with autostart=no"),
        GoldenCase("svc * @anyvm @anyvm allow autostart=no notify=yes", "svc", "work", "personal", "deny @1"),
        GoldenCase("svc * @anyvm @anyvm allow autostart=no", "svc", "work", "sys-net", "allow sys-net noautostart @1"),
        GoldenCase("svc * @anyvm @anyvm allow autostart=no", "svc", "work", "@dispvm", "deny @1 quiet"),
        GoldenCase("svc * @anyvm dom0 allow autostart=no", "svc", "work", "dom0", "allow dom0 noautostart @1"),
        GoldenCase("svc * @anyvm @anyvm allow autostart=yes", "svc", "work", "personal", "allow personal @1"),
        GoldenCase("svc * @anyvm @anyvm allow target=vault", "svc", "work", "personal", "allow vault @1"),
        GoldenCase("svc * @anyvm personal allow target=vault\nsvc * @anyvm vault deny", "svc", "work", "personal",
                   "allow vault @1", "the redirect bypasses deny rules for the new target"),
        GoldenCase("svc * @anyvm personal allow target=vault\nsvc * @anyvm vault deny", "svc", "work", "vault",
                   "deny @2"),
        GoldenCase("svc * @anyvm @default allow target=dom0", "svc", "work", "", "allow dom0 @1"),
        GoldenCase("svc * @anyvm @default allow target=@adminvm", "svc", "work", "", "allow dom0 @1"),
        GoldenCase("svc * @anyvm @anyvm allow target=ghost", "svc", "work", "personal", "deny @1"),
        GoldenCase("svc * @anyvm @anyvm allow target=@dispvm", "svc", "work", "personal",
                   "allow @dispvm:default-dvm @1"),
        GoldenCase("svc * @anyvm @anyvm allow target=@dispvm", "svc", "vault", "personal", "deny @1"),
        GoldenCase("svc * @anyvm @anyvm allow target=@dispvm:other-dvm", "svc", "work", "personal",
                   "allow @dispvm:other-dvm @1"),
        GoldenCase("svc * @anyvm @anyvm allow target=@dispvm:vault", "svc", "work", "personal", "deny @1"),
        GoldenCase("svc * @anyvm @anyvm allow target=uuid:\(Fixtures.uuid(3))", "svc", "work", "personal",
                   "allow vault @1"),
        GoldenCase("svc * @anyvm @anyvm allow target=uuid:\(Fixtures.uuid(1))", "svc", "work", "personal", "deny @1",
                   "redirect back to the source by uuid"),
        GoldenCase("svc * @anyvm @anyvm allow user=root target=sys-net notify=yes", "svc", "work", "personal",
                   "allow sys-net user=root notify @1"),
        GoldenCase("", "svc", "work", "personal", "deny", "empty policy"),
        GoldenCase("# only a comment", "svc", "work", "personal", "deny"),
        GoldenCase("svc * @anyvm @anyvm deny\nsvc * @anyvm @anyvm allow", "svc", "work", "personal", "deny @1",
                   "first match wins"),
        GoldenCase("svc * @anyvm vault deny\nsvc * @anyvm @anyvm allow", "svc", "work", "personal", "allow personal @2"),
    ]

    static let asks: [GoldenCase] = [
        GoldenCase("svc * @anyvm @anyvm ask", "svc", "work", "personal", "ask \(anyFromWork) @1"),
        GoldenCase("svc * @anyvm @anyvm ask", "svc", "vault", "personal", "ask \(anyFromVault) @1",
                   "no default_dispvm: @dispvm dropped"),
        GoldenCase("svc * @anyvm @anyvm ask", "svc", "work", "", "ask \(anyFromWork) @1"),
        GoldenCase("svc * @anyvm vault deny\nsvc * @anyvm @tag:personal allow\nsvc * @anyvm sys-net allow\n"
                   + "svc * @anyvm @anyvm ask default_target=sys-net", "svc", "work", "fedora",
                   "ask [@dispvm:default-dvm,@dispvm:other-dvm,default-dvm,disp1,fedora,nodefault,other-dvm,personal,sys-net]"
                   + " default=sys-net @4", "deny removes, walking backwards"),
        GoldenCase("svc * @anyvm vault deny\nsvc * @anyvm @tag:personal allow\nsvc * @anyvm @anyvm ask",
                   "svc", "work", "personal", "allow personal @2"),
        GoldenCase("svc * @anyvm @anyvm ask\nsvc * @anyvm vault deny", "svc", "work", "personal",
                   "ask \(anyFromWork) @1", "a later deny does not remove an earlier allow"),
        GoldenCase("svc * @anyvm @anyvm ask\nsvc * @anyvm @anyvm deny", "svc", "work", "personal",
                   "ask \(anyFromWork) @1"),
        GoldenCase("svc * @anyvm @anyvm deny\nsvc * @anyvm @anyvm ask", "svc", "work", "", "deny @1"),
        GoldenCase("svc * @anyvm @default ask\nsvc * @anyvm @anyvm deny", "svc", "work", "", "deny @1",
                   "@default expands to nothing"),
        GoldenCase("svc * @anyvm @anyvm ask target=vault", "svc", "work", "personal", "ask [vault] @1"),
        GoldenCase("svc * @anyvm @anyvm ask target=vault autostart=no", "svc", "work", "personal", "deny @1"),
        GoldenCase("svc * @anyvm @anyvm ask target=sys-net autostart=no", "svc", "work", "personal",
                   "ask [sys-net] noautostart @1"),
        GoldenCase("svc * @anyvm @anyvm ask target=@dispvm", "svc", "work", "personal", "ask [@dispvm] @1"),
        GoldenCase("svc * @anyvm @anyvm ask target=@dispvm autostart=no", "svc", "work", "personal", "deny @1"),
        GoldenCase("svc * @anyvm @anyvm ask target=dom0", "svc", "work", "personal", "ask [dom0] @1"),
        GoldenCase("svc * @anyvm @anyvm ask target=@adminvm", "svc", "work", "personal", "ask [@adminvm] @1"),
        GoldenCase("svc * @anyvm @anyvm ask target=@dispvm:other-dvm", "svc", "work", "personal",
                   "ask [@dispvm:other-dvm] @1"),
        GoldenCase("svc * @anyvm @anyvm ask default_target=@dispvm", "svc", "work", "personal",
                   "ask \(anyFromWork) default=@dispvm:default-dvm @1"),
        GoldenCase("svc * @anyvm @anyvm ask default_target=dom0", "svc", "work", "personal",
                   "ask \(anyFromWork) @1", "default_target outside the choices is dropped"),
        GoldenCase("svc * @anyvm @anyvm ask default_target=work", "svc", "work", "personal",
                   "ask \(anyFromWork) @1", "the source is never a choice"),
        GoldenCase("svc * @anyvm @anyvm ask default_target=vault user=bob notify=yes", "svc", "work", "personal",
                   "ask \(anyFromWork) default=vault user=bob notify @1"),
        GoldenCase("svc * @anyvm @anyvm ask autostart=no", "svc", "work", "personal",
                   "ask [default-dvm,disp1,nodefault,sys-net] noautostart @1"),
        GoldenCase("svc * @anyvm * ask", "svc", "work", "personal",
                   "ask [@dispvm:default-dvm,@dispvm:other-dvm,default-dvm,disp1,dom0,fedora,nodefault,other-dvm,"
                   + "personal,sys-net,vault] @1", "* includes dom0"),
        GoldenCase("svc * @anyvm @adminvm ask", "svc", "work", "dom0", "ask [dom0] @1"),
        GoldenCase("svc * @anyvm dom0 ask", "svc", "work", "@adminvm", "ask [dom0] @1"),
        GoldenCase("svc * @anyvm @type:AdminVM ask", "svc", "work", "dom0", "ask [dom0] @1"),
        GoldenCase("svc * dom0 @adminvm ask", "svc", "dom0", "dom0", "deny @1", "only the source remains"),
        GoldenCase("svc * @anyvm @tag:work ask", "svc", "personal", "work", "ask [work] @1",
                   "internal domains are never offered"),
        GoldenCase("svc * @anyvm @tag:work ask", "svc", "work", "@default", "deny"),
        GoldenCase("svc * @anyvm @dispvm:@tag:dvm ask", "svc", "work", "@dispvm:default-dvm",
                   "ask [@dispvm:default-dvm] @1"),
        GoldenCase("svc * @anyvm @dispvm ask", "svc", "personal", "@dispvm", "ask [@dispvm:other-dvm] @1"),
        GoldenCase("svc * @anyvm @dispvm ask", "svc", "vault", "@dispvm", "deny @1", "no default_dispvm"),
        GoldenCase("svc * @anyvm @dispvm ask", "svc", "sys-net", "@dispvm", "ask [@dispvm:vault] @1",
                   "default_dispvm offered as written"),
        GoldenCase("svc * personal sys-net allow\nsvc * @anyvm @tag:work ask", "svc", "vault", "work", "ask [work] @2",
                   "rules for another source do not add choices"),
        GoldenCase("svc * vault sys-net allow\nsvc * @anyvm @tag:work ask", "svc", "vault", "work",
                   "ask [sys-net,work] @2"),
        GoldenCase("svc +a @anyvm sys-net allow\nsvc * @anyvm @tag:personal ask", "svc+b", "work", "personal",
                   "ask [personal] @2", "rules for another argument do not add choices"),
        GoldenCase("svc +a @anyvm sys-net allow\nsvc * @anyvm @tag:personal ask", "svc+a", "work", "personal",
                   "ask [personal,sys-net] @2"),
        GoldenCase("svc * @anyvm @tag:personal ask\nother * @anyvm sys-net allow", "svc", "work", "personal",
                   "ask [personal] @1", "rules for another service do not add choices"),
        GoldenCase("svc * @anyvm @tag:personal ask\n* * @anyvm sys-net allow", "svc", "work", "personal",
                   "ask [personal,sys-net] @1"),
        GoldenCase("svc * @anyvm @tag:personal ask\nsvc * @anyvm uuid:\(Fixtures.uuid(6)) allow", "svc", "work",
                   "personal", "ask [personal,sys-net] @1", "a uuid expands to the domain's name"),
        GoldenCase("svc * @anyvm @anyvm ask target=vault\nsvc * @anyvm @anyvm deny", "svc", "work", "personal",
                   "ask [vault] @1"),
        GoldenCase("svc * @anyvm @tag:personal ask\nsvc * @anyvm @anyvm allow target=vault", "svc", "work",
                   "personal", "ask [personal,vault] @1", "a redirect adds its target, not the column"),
        GoldenCase("svc * @anyvm personal deny\nsvc * @anyvm @anyvm allow target=personal\nsvc * @anyvm @anyvm ask",
                   "svc", "work", "vault", "allow personal @2"),
        GoldenCase("svc * @anyvm @type:TemplateVM ask", "svc", "work", "fedora", "ask [fedora] @1"),
    ]

    static var all: [GoldenCase] {
        serviceAndArgument + sources + targets + refusedRequests + crashes + actions + asks
    }
}
