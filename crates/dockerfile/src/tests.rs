//! Table-driven tests of [`crate::parse`] over whole Dockerfiles.

use std::time::Duration;

use crate::*;

fn sh(s: &str) -> ShellOrExec {
    ShellOrExec::Shell(s.to_string())
}

fn ex(v: &[&str]) -> ShellOrExec {
    ShellOrExec::Exec(strs(v))
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn kv(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn hd(name: &str, content: &str, expand: bool, chomp: bool) -> Heredoc {
    Heredoc {
        name: name.into(),
        content: content.into(),
        expand,
        chomp_tabs: chomp,
    }
}

fn run(command: ShellOrExec) -> InstructionKind {
    InstructionKind::Run {
        command,
        heredocs: vec![],
        mounts: vec![],
        network: None,
        security: None,
    }
}

fn run_hd(command: &str, heredocs: Vec<Heredoc>) -> InstructionKind {
    InstructionKind::Run {
        command: sh(command),
        heredocs,
        mounts: vec![],
        network: None,
        security: None,
    }
}

fn copy(flags: CopyFlags, srcs: &[&str], dest: &str, heredocs: Vec<Heredoc>) -> InstructionKind {
    InstructionKind::Copy {
        flags,
        srcs: strs(srcs),
        dest: dest.into(),
        heredocs,
    }
}

fn parse_ok(text: &str) -> Dockerfile {
    parse(text).unwrap_or_else(|e| panic!("parse failed for {text:?}: {e}"))
}

/// Kind of the first instruction after `FROM scratch` (text is the rest of the file).
fn first_kind(body: &str) -> InstructionKind {
    let df = parse_ok(&format!("FROM scratch\n{body}"));
    let stage = &df.stages[0];
    assert!(
        !stage.instructions.is_empty(),
        "no instruction parsed from {body:?}"
    );
    stage.instructions[0].kind.clone()
}

/// (body after `FROM scratch\n`, expected kind of its first instruction)
fn instruction_cases() -> Vec<(&'static str, InstructionKind)> {
    use InstructionKind as K;
    vec![
        ("RUN echo hi", run(sh("echo hi"))),
        ("RUN [\"echo\", \"hi there\"]", run(ex(&["echo", "hi there"]))),
        ("run   echo   a  ", run(sh("echo   a"))),
        ("Run [ \"a\",", run(sh("[ \"a\","))),
        ("RUN [\"a\"] extra", run(sh("[\"a\"] extra"))),
        ("RUN []", run(ex(&[]))),
        (
            "RUN --mount=type=cache,target=/c --mount=type=bind,target=/b --network=none --security=insecure make all",
            K::Run {
                command: sh("make all"),
                heredocs: vec![],
                mounts: strs(&["type=cache,target=/c", "type=bind,target=/b"]),
                network: Some("none".into()),
                security: Some("insecure".into()),
            },
        ),
        (
            "RUN --network=default [\"a\", \"b\"]",
            K::Run {
                command: ex(&["a", "b"]),
                heredocs: vec![],
                mounts: vec![],
                network: Some("default".into()),
                security: None,
            },
        ),
        (
            "RUN --mount=type=secret,id=tok cat /run/secrets/tok",
            K::Run {
                command: sh("cat /run/secrets/tok"),
                heredocs: vec![],
                mounts: strs(&["type=secret,id=tok"]),
                network: None,
                security: None,
            },
        ),
        (
            "CMD [\"nginx\", \"-g\", \"daemon off;\"]",
            K::Cmd(ex(&["nginx", "-g", "daemon off;"])),
        ),
        ("CMD python app.py", K::Cmd(sh("python app.py"))),
        ("cmd [\"a\\\"b\", \"\\u00e9\"]", K::Cmd(ex(&["a\"b", "é"]))),
        ("ENTRYPOINT [\"/bin/sh\", \"-c\"]", K::Entrypoint(ex(&["/bin/sh", "-c"]))),
        ("ENTRYPOINT exec top -b", K::Entrypoint(sh("exec top -b"))),
        ("ENTRYPOINT []", K::Entrypoint(ex(&[]))),
        (
            "LABEL a=b \"c d\"=\"e f\" g='h i'",
            K::Label(kv(&[("a", "b"), ("\"c d\"", "\"e f\""), ("g", "'h i'")])),
        ),
        ("LABEL version 1.0 beta", K::Label(kv(&[("version", "1.0 beta")]))),
        (
            "LABEL \"multi\"=\"line \\\n  value\"",
            K::Label(kv(&[("\"multi\"", "\"line   value\"")])),
        ),
        (
            "MAINTAINER John Doe <j@d.com>",
            K::Maintainer("John Doe <j@d.com>".into()),
        ),
        ("EXPOSE 80/tcp 443 $PORT", K::Expose(strs(&["80/tcp", "443", "$PORT"]))),
        ("EXPOSE 80 \\\n   443", K::Expose(strs(&["80", "443"]))),
        (
            "ENV A=1 B=\"two words\" C=three\\ four",
            K::Env(kv(&[("A", "1"), ("B", "\"two words\""), ("C", "three\\ four")])),
        ),
        (
            "ENV PATH /usr/bin:$PATH   with spaces",
            K::Env(kv(&[("PATH", "/usr/bin:$PATH   with spaces")])),
        ),
        ("ENV EMPTY=\"\"", K::Env(kv(&[("EMPTY", "\"\"")]))),
        ("ENV A=1 \\\n    B=2", K::Env(kv(&[("A", "1"), ("B", "2")]))),
        ("env x=${Y:-z}", K::Env(kv(&[("x", "${Y:-z}")]))),
        (
            "ADD --chown=1:2 --chmod=644 --link --checksum=sha256:abc --keep-git-dir=true --unpack=false --exclude=*.md a.tar /dest/",
            K::Add {
                flags: CopyFlags {
                    chown: Some("1:2".into()),
                    chmod: Some("644".into()),
                    link: true,
                    checksum: Some("sha256:abc".into()),
                    keep_git_dir: true,
                    unpack: Some(false),
                    exclude: strs(&["*.md"]),
                    ..CopyFlags::default()
                },
                srcs: strs(&["a.tar"]),
                dest: "/dest/".into(),
                heredocs: vec![],
            },
        ),
        (
            "ADD [\"x y\", \"/z\"]",
            K::Add {
                flags: CopyFlags::default(),
                srcs: strs(&["x y"]),
                dest: "/z".into(),
                heredocs: vec![],
            },
        ),
        (
            "COPY --from=build --parents --exclude=a --exclude=b src1 src2 /dst/",
            copy(
                CopyFlags {
                    from: Some("build".into()),
                    parents: true,
                    exclude: strs(&["a", "b"]),
                    ..CopyFlags::default()
                },
                &["src1", "src2"],
                "/dst/",
                vec![],
            ),
        ),
        (
            "COPY [\"a b\", \"/c d/\"]",
            copy(CopyFlags::default(), &["a b"], "/c d/", vec![]),
        ),
        (
            "COPY --link=false --chown=\"app user\" a b",
            copy(
                CopyFlags {
                    chown: Some("app user".into()),
                    ..CopyFlags::default()
                },
                &["a"],
                "b",
                vec![],
            ),
        ),
        ("VOLUME [\"/data\", \"/logs\"]", K::Volume(strs(&["/data", "/logs"]))),
        ("VOLUME /a   /b", K::Volume(strs(&["/a", "/b"]))),
        ("USER app:app", K::User("app:app".into())),
        ("WORKDIR /srv/my app", K::Workdir("/srv/my app".into())),
        (
            "ARG A B=2 C=\"x y\" D=",
            K::Arg(vec![
                ("A".into(), None),
                ("B".into(), Some("2".into())),
                ("C".into(), Some("\"x y\"".into())),
                ("D".into(), Some(String::new())),
            ]),
        ),
        ("STOPSIGNAL SIGTERM", K::Stopsignal("SIGTERM".into())),
        ("HEALTHCHECK NONE", K::Healthcheck(Healthcheck::None)),
        (
            "HEALTHCHECK --interval=30s --timeout=1m30s --start-period=500ms --start-interval=2s --retries=3 CMD curl -f http://localhost/",
            K::Healthcheck(Healthcheck::Check {
                test: sh("curl -f http://localhost/"),
                interval: Some(Duration::from_secs(30)),
                timeout: Some(Duration::from_secs(90)),
                start_period: Some(Duration::from_millis(500)),
                start_interval: Some(Duration::from_secs(2)),
                retries: Some(3),
            }),
        ),
        (
            "healthcheck cmd [\"curl\", \"-f\", \"x\"]",
            K::Healthcheck(Healthcheck::Check {
                test: ex(&["curl", "-f", "x"]),
                interval: None,
                timeout: None,
                start_period: None,
                start_interval: None,
                retries: None,
            }),
        ),
        ("SHELL [\"/bin/bash\", \"-c\"]", K::Shell(strs(&["/bin/bash", "-c"]))),
        // heredocs
        (
            "RUN <<EOF\necho a\necho $B\nEOF",
            run_hd("<<EOF", vec![hd("EOF", "echo a\necho $B\n", true, false)]),
        ),
        (
            "RUN python3 <<'PY'\nprint(1)\nPY",
            run_hd("python3 <<'PY'", vec![hd("PY", "print(1)\n", false, false)]),
        ),
        (
            "RUN <<-EOT\n\techo tab\n\t\tdeeper\n\tEOT",
            run_hd("<<-EOT", vec![hd("EOT", "echo tab\ndeeper\n", true, true)]),
        ),
        (
            "RUN <<A cat - && cat <<\"B\"\na\nA\nb\nB",
            run_hd(
                "<<A cat - && cat <<\"B\"",
                vec![hd("A", "a\n", true, false), hd("B", "b\n", false, false)],
            ),
        ),
        (
            "RUN <<EOF\nEOF",
            run_hd("<<EOF", vec![hd("EOF", "", true, false)]),
        ),
        (
            "RUN <<EOF\n# not a comment\n\nRUN not an instruction \\\nEOF",
            run_hd(
                "<<EOF",
                vec![hd(
                    "EOF",
                    "# not a comment\n\nRUN not an instruction \\\n",
                    true,
                    false,
                )],
            ),
        ),
        (
            "RUN --mount=type=cache,target=/c <<EOF\nmake\nEOF",
            InstructionKind::Run {
                command: sh("<<EOF"),
                heredocs: vec![hd("EOF", "make\n", true, false)],
                mounts: strs(&["type=cache,target=/c"]),
                network: None,
                security: None,
            },
        ),
        ("RUN [\"<<EOF\"]", run(ex(&["<<EOF"]))),
        (
            "COPY <<EOF /app/conf\nline $X\nEOF",
            copy(
                CopyFlags::default(),
                &[],
                "/app/conf",
                vec![hd("EOF", "line $X\n", true, false)],
            ),
        ),
        (
            "COPY <<one <<'two' /dest/\n1\none\n2\ntwo",
            copy(
                CopyFlags::default(),
                &[],
                "/dest/",
                vec![hd("one", "1\n", true, false), hd("two", "2\n", false, false)],
            ),
        ),
        (
            "COPY --chmod=755 <<-EOF local.txt /bin/\n\t#!/bin/sh\n\techo hi\n\tEOF",
            copy(
                CopyFlags {
                    chmod: Some("755".into()),
                    ..CopyFlags::default()
                },
                &["local.txt"],
                "/bin/",
                vec![hd("EOF", "#!/bin/sh\necho hi\n", true, true)],
            ),
        ),
        // continuation edge cases
        ("RUN a \\\n# comment\n  b", run(sh("a   b"))),
        ("RUN a \\\n\n   \n  b", run(sh("a   b"))),
        ("RUN a \\   \n b", run(sh("a  b"))),
        ("RUN echo \\\\\nCMD x", run(sh("echo \\\\"))),
        ("RUN a \\", run(sh("a"))),
        ("RUN a \\\n  \\\n b", run(sh("a    b"))),
        ("  RUN indented", run(sh("indented"))),
        ("RUN a\r\nCMD b\r\n", run(sh("a"))),
        ("RUN echo 'a # not a comment'", run(sh("echo 'a # not a comment'"))),
    ]
}

#[test]
fn instruction_table() {
    let cases = instruction_cases();
    assert!(cases.len() >= 50);
    for (body, want) in cases {
        assert_eq!(first_kind(body), want, "body {body:?}");
    }
}

/// (Dockerfile, expected line, expected message)
const ERROR_CASES: &[(&str, usize, &str)] = &[
    ("", 1, "file with no instructions"),
    ("# only a comment\n\n   \n", 3, "file with no instructions"),
    ("RUN echo", 1, "no build stage in current context"),
    ("ARG a\nRUN x\nFROM y", 2, "no build stage in current context"),
    ("ARG a\n", 1, "dockerfile contains no stages to build"),
    ("FROM x\nFOO bar", 2, "unknown instruction: FOO"),
    ("FROM x\nfoo bar", 2, "unknown instruction: foo"),
    ("FROM x\nFOO [\"a\", 1]", 2, "unknown instruction: FOO"),
    ("FROM x\nENV", 2, "ENV requires at least one argument"),
    ("FROM x\nENV =a", 2, "ENV names can not be blank"),
    ("FROM x\nENV a", 2, "ENV must have two arguments"),
    (
        "FROM x\nENV a=b c",
        2,
        "Syntax error - can't find = in \"c\". Must be of the form: name=value",
    ),
    ("FROM x\nLABEL", 2, "LABEL requires at least one argument"),
    ("FROM x\nLABEL =x", 2, "LABEL names can not be blank"),
    (
        "FROM x\nCOPY a",
        2,
        "COPY requires at least two arguments, but only one was provided. Destination could not be determined",
    ),
    (
        "FROM x\nADD",
        2,
        "ADD requires at least two arguments, but only one was provided. Destination could not be determined",
    ),
    ("FROM", 1, "FROM requires either one or three arguments"),
    ("FROM a b", 1, "FROM requires either one or three arguments"),
    ("FROM a AS b c", 1, "FROM requires either one or three arguments"),
    ("FROM a TO b", 1, "FROM requires either one or three arguments"),
    (
        "FROM a AS 1x",
        1,
        "invalid name for build stage: \"1x\", name can't start with a number or contain symbols",
    ),
    (
        "FROM a AS b/c",
        1,
        "invalid name for build stage: \"b/c\", name can't start with a number or contain symbols",
    ),
    ("FROM --foo=bar a", 1, "unknown flag: --foo"),
    ("FROM --platform a", 1, "missing a value on flag: --platform"),
    ("FROM x\nCOPY --checksum=x a b", 2, "unknown flag: --checksum"),
    ("FROM x\nADD --from=y a b", 2, "unknown flag: --from"),
    ("FROM x\nRUN --network=bridge a", 2, "invalid network mode \"bridge\""),
    ("FROM x\nRUN --security=x a", 2, "security \"x\" is not valid"),
    ("FROM x\nRUN --mount a", 2, "missing a value on flag: --mount"),
    ("FROM x\nRUN --device=/dev/fuse a", 2, "unknown flag: --device"),
    (
        "FROM x\nRUN --mount=type=cache,from=$X a",
        2,
        "'from' doesn't support variable expansion, define alias stage instead",
    ),
    (
        "FROM x\nCOPY --link=maybe a b",
        2,
        "expecting boolean value for flag --link, not: maybe",
    ),
    (
        "FROM x\nCOPY --from=a --from=b a b",
        2,
        "duplicate flag specified: --from",
    ),
    ("FROM x\nCOPY --exclude a b", 2, "missing a value on flag: --exclude"),
    ("FROM x\nCMD --foo x", 2, "unknown flag: --foo"),
    ("FROM x\nENV --a=b c=d", 2, "unknown flag: --a"),
    ("FROM x\nSHELL /bin/sh -c", 2, "SHELL requires the arguments to be in JSON form"),
    ("FROM x\nSHELL", 2, "SHELL requires at least one argument"),
    ("FROM x\nSHELL []", 2, "SHELL requires at least one argument"),
    (
        "FROM x\nCMD [\"a\", 1]",
        2,
        "when using JSON array syntax, arrays must be comprised of strings only",
    ),
    (
        "FROM x\nRUN [\"a\", null]",
        2,
        "when using JSON array syntax, arrays must be comprised of strings only",
    ),
    (
        "FROM x\nONBUILD ONBUILD RUN x",
        2,
        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
    ),
    ("FROM x\nONBUILD FROM y", 2, "FROM isn't allowed as an ONBUILD trigger"),
    (
        "FROM x\nonbuild maintainer y",
        2,
        "MAINTAINER isn't allowed as an ONBUILD trigger",
    ),
    ("FROM x\nONBUILD", 2, "ONBUILD requires at least one argument"),
    ("FROM x\nMAINTAINER", 2, "MAINTAINER requires exactly one argument"),
    ("FROM x\nUSER", 2, "USER requires exactly one argument"),
    ("FROM x\nWORKDIR", 2, "WORKDIR requires exactly one argument"),
    ("FROM x\nSTOPSIGNAL", 2, "STOPSIGNAL requires exactly one argument"),
    ("FROM x\nEXPOSE", 2, "EXPOSE requires at least one argument"),
    ("FROM x\nVOLUME", 2, "VOLUME requires at least one argument"),
    ("FROM x\nVOLUME [\"\"]", 2, "VOLUME specified can not be an empty string"),
    ("FROM x\nARG", 2, "ARG requires at least one argument"),
    ("FROM x\nARG =x", 2, "ARG names can not be blank"),
    ("FROM x\nHEALTHCHECK", 2, "HEALTHCHECK requires at least one argument"),
    ("FROM x\nHEALTHCHECK NONE x", 2, "HEALTHCHECK NONE takes no arguments"),
    (
        "FROM x\nHEALTHCHECK FOO x",
        2,
        "Unknown type \"FOO\" in HEALTHCHECK (try CMD)",
    ),
    ("FROM x\nHEALTHCHECK CMD", 2, "Missing command after HEALTHCHECK CMD"),
    (
        "FROM x\nHEALTHCHECK --interval=10 CMD a",
        2,
        "time: missing unit in duration \"10\"",
    ),
    (
        "FROM x\nHEALTHCHECK --interval=1us CMD a",
        2,
        "Interval \"interval\" cannot be less than 1ms",
    ),
    (
        "FROM x\nHEALTHCHECK --retries=-1 CMD a",
        2,
        "--retries cannot be negative (-1)",
    ),
    ("FROM x\nHEALTHCHECK --bogus=1 CMD a", 2, "unknown flag: --bogus"),
    ("FROM x\nRUN", 2, "RUN requires at least one argument"),
    ("FROM x\nRUN <<EOF\necho", 2, "unterminated heredoc"),
    ("FROM x\nCOPY <<A <<B /d\na\nA\nb", 2, "unterminated heredoc"),
    (
        "FROM x\nCOPY a <<EOF\nx\nEOF",
        2,
        "COPY cannot accept a heredoc as a destination",
    ),
    ("# escape=x\nFROM a", 1, "invalid escape token 'x' does not match ` or \\"),
    (
        "# escape=`\n# escape=\\\nFROM a",
        2,
        "only one escape parser directive can be used",
    ),
    (
        "# syntax=a\n# SYNTAX=b\nFROM x",
        2,
        "only one syntax parser directive can be used",
    ),
    ("FROM x\nRUN a \\\n b\nBAD x", 4, "unknown instruction: BAD"),
    ("FROM x\nRUN <<EOF\na\nEOF\nNOPE", 5, "unknown instruction: NOPE"),
    ("FROM x\nRUN a \\\n  b \\\n  c\nCOPY x", 5, "COPY requires at least two arguments, but only one was provided. Destination could not be determined"),
];

#[test]
fn error_table() {
    assert!(ERROR_CASES.len() >= 60);
    for (text, line, msg) in ERROR_CASES {
        match parse(text) {
            Ok(df) => panic!("{text:?} parsed but should fail: {df:?}"),
            Err(e) => {
                assert_eq!(
                    (e.line, e.message.as_str()),
                    (*line, *msg),
                    "input {text:?}"
                );
            }
        }
    }
}

#[test]
fn error_display() {
    let e = parse("FROM x\nFOO bar").unwrap_err();
    assert_eq!(
        e.to_string(),
        "dockerfile parse error on line 2: unknown instruction: FOO"
    );
}

#[test]
fn stages_and_meta_args() {
    let df = parse_ok(
        "ARG BASE=alpine\nARG TAG\nFROM --platform=$BUILDPLATFORM ${BASE}:${TAG} AS Builder\nRUN make\n\nFROM builder as final\nCOPY --from=builder /out /out\nFROM scratch\n",
    );
    assert_eq!(df.meta_args.len(), 2);
    assert_eq!(
        df.meta_args[0].kind,
        InstructionKind::Arg(vec![("BASE".into(), Some("alpine".into()))])
    );
    assert_eq!(df.stages.len(), 3);
    assert_eq!(df.stages[0].name.as_deref(), Some("builder"));
    assert_eq!(
        df.stages[0].from.kind,
        InstructionKind::From {
            image: "${BASE}:${TAG}".into(),
            name: Some("builder".into()),
            platform: Some("$BUILDPLATFORM".into()),
        }
    );
    assert_eq!(df.stages[0].instructions.len(), 1);
    assert_eq!(df.stages[1].name.as_deref(), Some("final"));
    assert_eq!(df.stages[2].name, None);
    assert!(df.stages[2].instructions.is_empty());
    assert_eq!(df.stage_index("BUILDER"), Some(0));
    assert_eq!(df.stage_index("final"), Some(1));
    assert_eq!(df.stage_index("2"), Some(2));
    assert_eq!(df.stage_index("3"), None);
    assert_eq!(df.stage_index("nope"), None);
}

#[test]
fn lines_and_original() {
    let df = parse_ok(
        "# comment\nFROM alpine\n\nRUN apt-get update && \\\n    apt-get install -y curl\nRUN <<EOF\necho hi\nEOF\nCMD [\"sh\"]\n",
    );
    let st = &df.stages[0];
    assert_eq!((st.from.line, st.from.end_line), (2, 2));
    assert_eq!(st.from.original, "FROM alpine");
    let r = &st.instructions[0];
    assert_eq!((r.line, r.end_line), (4, 5));
    assert_eq!(
        r.original,
        "RUN apt-get update &&     apt-get install -y curl"
    );
    assert_eq!(r.keyword(), "RUN");
    let h = &st.instructions[1];
    assert_eq!((h.line, h.end_line), (6, 8));
    assert_eq!(h.original, "RUN <<EOF");
    let c = &st.instructions[2];
    assert_eq!((c.line, c.end_line), (9, 9));
    assert_eq!(c.keyword(), "CMD");
}

#[test]
fn directives() {
    let df = parse_ok("# syntax=docker/dockerfile:1\n# escape=`\nFROM x\nRUN a `\n  b\n");
    assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.escape, '`');
    assert_eq!(df.stages[0].instructions[0].kind, run(sh("a   b")));

    // case-insensitive, spaces around '=', leading whitespace
    let df = parse_ok("  #  ESCAPE = `\nFROM x\n");
    assert_eq!(df.escape, '`');

    // after a comment, a blank line or an instruction directives are plain comments
    for text in [
        "# hello\n# escape=`\nFROM x\nRUN a \\\n b\n",
        "\n# escape=`\nFROM x\nRUN a \\\n b\n",
        "FROM x\n# escape=`\nRUN a \\\n b\n",
        "# unknown=1\n# escape=`\nFROM x\nRUN a \\\n b\n",
    ] {
        let df = parse_ok(text);
        assert_eq!(df.escape, '\\', "{text:?}");
        assert_eq!(
            df.stages[0].instructions[0].kind,
            run(sh("a  b")),
            "{text:?}"
        );
    }

    // a repeated directive after the directive block is just a comment
    let df = parse_ok("# escape=`\nFROM x\n# escape=\\\nRUN a `\n b\n");
    assert_eq!(df.escape, '`');

    // check directive is accepted
    let df = parse_ok("# check=skip=all\nFROM x\n");
    assert_eq!(df.escape, '\\');

    // byte order mark
    let df = parse_ok("\u{feff}# escape=`\nFROM x\n");
    assert_eq!(df.escape, '`');
}

#[test]
fn backtick_escape_file() {
    let text = "# escape=`\nFROM mcr.microsoft.com/windows/servercore\nCOPY testfile.txt c:\\\nRUN dir c:\\ `\n    && echo done\nENV A=x`\"y B=c:\\dir\n";
    let df = parse_ok(text);
    let ins = &df.stages[0].instructions;
    assert_eq!(
        ins[0].kind,
        copy(CopyFlags::default(), &["testfile.txt"], "c:\\", vec![])
    );
    assert_eq!(ins[1].kind, run(sh("dir c:\\     && echo done")));
    assert_eq!(
        ins[2].kind,
        InstructionKind::Env(kv(&[("A", "x`\"y"), ("B", "c:\\dir")]))
    );
    // and the values expand with the backtick lexer
    let lx = Lexer::new(df.escape);
    assert_eq!(lx.expand_word("x`\"y", &|_| None).unwrap(), "x\"y");
    assert_eq!(lx.expand_word("c:\\dir", &|_| None).unwrap(), "c:\\dir");
}

#[test]
fn onbuild() {
    let df = parse_ok("FROM x\nONBUILD RUN echo trigger\nonbuild COPY <<EOF /f\nhi\nEOF\n");
    let ins = &df.stages[0].instructions;
    let InstructionKind::Onbuild(inner) = &ins[0].kind else {
        panic!("not onbuild: {:?}", ins[0].kind);
    };
    assert_eq!(inner.kind, run(sh("echo trigger")));
    assert_eq!(inner.original, "RUN echo trigger");
    assert_eq!(inner.line, 2);
    let InstructionKind::Onbuild(inner) = &ins[1].kind else {
        panic!("not onbuild: {:?}", ins[1].kind);
    };
    assert_eq!(
        inner.kind,
        copy(
            CopyFlags::default(),
            &[],
            "/f",
            vec![hd("EOF", "hi\n", true, false)]
        )
    );
    assert_eq!((ins[1].line, ins[1].end_line), (3, 5));
    // inner instructions are validated
    let e = parse("FROM x\nONBUILD COPY a").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e
        .message
        .starts_with("COPY requires at least two arguments"));
}

#[test]
fn heredoc_script_detection() {
    assert!(run_heredoc_is_script(&sh("<<EOF")));
    assert!(run_heredoc_is_script(&sh("<<-'EOF'")));
    assert!(!run_heredoc_is_script(&sh("python3 <<EOF")));
    assert!(!run_heredoc_is_script(&sh("<<EOF python3")));
    assert!(!run_heredoc_is_script(&ex(&["<<EOF"])));
}

#[test]
fn heredoc_not_recognised_where_docker_does_not() {
    // USER can't take heredocs: the following lines are instructions
    let e = parse("FROM x\nUSER <<A\nBOGUS\n").unwrap_err();
    assert_eq!(
        (e.line, e.message.as_str()),
        (3, "unknown instruction: BOGUS")
    );
    // quoted "<<" is not a heredoc
    let k = first_kind("RUN echo \"<<NOHEREDOC\"\nCMD x");
    assert_eq!(k, run(sh("echo \"<<NOHEREDOC\"")));
}

#[test]
fn seed_dockerfiles() {
    let deb = parse_ok(include_str!("testdata/deb.Dockerfile"));
    assert_eq!(deb.stages.len(), 1);
    let st = &deb.stages[0];
    assert_eq!(
        st.from.kind,
        InstructionKind::From {
            image: "debian:stable".into(),
            name: None,
            platform: None
        }
    );
    assert_eq!(st.from.line, 3);
    let kinds: Vec<&str> = st.instructions.iter().map(|i| i.keyword()).collect();
    assert_eq!(kinds, vec!["RUN", "COPY", "CMD"]);
    assert_eq!(
        st.instructions[0].kind,
        run(sh(
            "apt-get update && apt-get install -y --no-install-recommends python3 python3-flask"
        ))
    );
    assert_eq!(
        st.instructions[1].kind,
        copy(CopyFlags::default(), &["server.py"], "app.py", vec![])
    );
    assert_eq!(
        st.instructions[2].kind,
        InstructionKind::Cmd(sh("python3 app.py"))
    );
    assert_eq!(st.instructions[2].original, "CMD python3 app.py");

    let py = parse_ok(include_str!("testdata/py.Dockerfile"));
    let st = &py.stages[0];
    assert_eq!(
        st.from.kind,
        InstructionKind::From {
            image: "python:bookworm".into(),
            name: None,
            platform: None
        }
    );
    assert_eq!(st.instructions[0].kind, run(sh("pip install flask")));
    assert_eq!(
        st.instructions[2].kind,
        InstructionKind::Cmd(sh("python app.py"))
    );
    assert_eq!(st.instructions[2].line, 8);
}

#[test]
fn builder_style_expansion() {
    // what the builder does with ENV/LABEL raw words
    let df = parse_ok("FROM x\nENV A=\"a b\" B=${A:-no}x C='$A'\nLABEL \"k k\"=\"v $A\"\n");
    let lx = Lexer::new(df.escape);
    let env = std::collections::HashMap::from([("A".to_string(), "a b".to_string())]);
    let look = |k: &str| env.get(k).cloned();
    let InstructionKind::Env(pairs) = &df.stages[0].instructions[0].kind else {
        panic!()
    };
    let expanded: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| {
            (
                lx.expand_word(k, &look).unwrap(),
                lx.expand_word(v, &look).unwrap(),
            )
        })
        .collect();
    assert_eq!(expanded, kv(&[("A", "a b"), ("B", "a bx"), ("C", "$A")]));
    let InstructionKind::Label(pairs) = &df.stages[0].instructions[1].kind else {
        panic!()
    };
    assert_eq!(lx.expand_word(&pairs[0].0, &look).unwrap(), "k k");
    assert_eq!(lx.expand_word(&pairs[0].1, &look).unwrap(), "v a b");
    assert_eq!(
        lx.referenced_vars("${A:-no}x $B"),
        vec!["A".to_string(), "B".to_string()]
    );
}

#[test]
fn serializes() {
    let df = parse_ok("FROM x AS y\nRUN echo\n");
    let json = serde_json::to_string(&df).unwrap();
    assert!(json.contains("\"escape\":\"\\\\\""), "{json}");
    assert!(json.contains("\"Run\""), "{json}");
}

#[test]
fn hostile_inputs_do_not_panic() {
    let inputs = [
        "FROM x\nRUN \\",
        "FROM x\n\\",
        "FROM x\nRUN <<",
        "FROM x\nRUN <<-",
        "FROM x\nRUN <<'",
        "FROM x\nCOPY <<\"a b\" /x\na b\n",
        "FROM x\nENV a=\"unterminated",
        "FROM x\nLABEL 'x",
        "FROM x\nRUN --mount=\"a",
        "FROM x\nHEALTHCHECK --interval=999999999999999999999h CMD a",
        "FROM x\nHEALTHCHECK --retries=99999999999999999999 CMD a",
        "FROM x\nCMD [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        "FROM x\nRUN é\u{0}\u{85}\u{a0} ü",
        "FROM é AS é",
        "FROM x\nARG ü=\u{a0}",
        "\u{feff}",
        "\r\n\r\n",
        "# escape=\nFROM x",
        "FROM x\nRUN --mount=type=cache,target=/x,\"\" a",
        "FROM x\nONBUILD ONBUILD",
    ];
    for i in inputs {
        let _ = parse(i);
    }
}
