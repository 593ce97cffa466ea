//! `podman_image` / `docker_image` (and the `containers.podman.` /
//! `community.docker.` names): an image on the host, built from a context
//! directory, loaded from a tarball, pulled, tagged or removed.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::engine::{string_map, strings, Engine, EngineSteps, Flavor, DOCKER_HOST};
use crate::modules::{
    parse_params, Diff, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const DESCRIPTION: &str = "Makes sure an image (`name`, with `tag` unless the name has one) is on the host: \
built from a context directory on the host (`path` or `build.path`, `build.file`/`build.dockerfile`, \
`build.args`), loaded from a tarball on the host (`load_path`), or pulled; with `repository`, tagged \
under that name too; with `state: absent`, removed. An image that is there already is left alone \
unless `force` (podman) / `force_source` (docker) asks to build, load or pull it again (then the task \
always reports a change). Check mode reports the same actions without running them.";

const RETURNS: &[ReturnDoc] = &[
    ReturnDoc {
        name: "image",
        description: "the image's `inspect` object after the task (`{}` when absent; the current one in check mode)",
    },
    ReturnDoc {
        name: "actions",
        description: "what was (or would be) done: `built`, `loaded`, `pulled`, `tagged`, `removed`",
    },
];

const PODMAN_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("name", OptKind::Str, "Image name, with or without a tag.").required(),
    OptionDoc::new("tag", OptKind::Str, "Tag, when `name` has none.").default("latest"),
    OptionDoc::new("state", OptKind::Str, "`build` is `present` with a build context.")
        .choices(&["present", "absent", "build"])
        .default("present"),
    OptionDoc::new("path", OptKind::Path, "Build context directory on the host."),
    OptionDoc::new(
        "build",
        OptKind::Dict,
        "Build settings: `file` (relative to the context), `args`, `target`, `cache` (false: `--no-cache`), `pull`.",
    ),
    OptionDoc::new(
        "load_path",
        OptKind::Path,
        "A tarball on the host to load (`podman load -i`).",
    ),
    OptionDoc::new("repository", OptKind::Str, "Tag the image under this name too."),
    OptionDoc::new(
        "force",
        OptKind::Bool,
        "Build/pull again even if present; remove even if used.",
    )
    .default("false"),
    OptionDoc::new("pull", OptKind::Bool, "Pull a missing image (without a build context).").default("true"),
    OptionDoc::new(
        "push",
        OptKind::Bool,
        "Pushing is not supported by rigger (only `false`).",
    )
    .default("false"),
    OptionDoc::new("executable", OptKind::Str, "The podman program on the host.").default("podman"),
];

const DOCKER_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("name", OptKind::Str, "Image name, with or without a tag.").required(),
    OptionDoc::new("tag", OptKind::Str, "Tag, when `name` has none.").default("latest"),
    OptionDoc::new("state", OptKind::Str, "Whether the image is there.")
        .choices(&["present", "absent"])
        .default("present"),
    OptionDoc::new("source", OptKind::Str, "Where a missing image comes from.")
        .choices(&["build", "load", "pull", "local"]),
    OptionDoc::new(
        "build",
        OptKind::Dict,
        "Build settings: `path` (context on the host), `dockerfile`, `args`, `target`, `nocache`, `pull`.",
    ),
    OptionDoc::new(
        "load_path",
        OptKind::Path,
        "A tarball on the host to load (`docker load -i`).",
    ),
    OptionDoc::new("repository", OptKind::Str, "Tag the image under this name too."),
    OptionDoc::new("force_source", OptKind::Bool, "Build/load/pull again even if present.").default("false"),
    OptionDoc::new("force_absent", OptKind::Bool, "Remove even if used (`rmi -f`).").default("false"),
    OptionDoc::new(
        "force_tag",
        OptKind::Bool,
        "Tag even if `repository` names another image (always done).",
    )
    .default("false")
    .ignored(),
    OptionDoc::new(
        "push",
        OptKind::Bool,
        "Pushing is not supported by rigger (only `false`).",
    )
    .default("false"),
    DOCKER_HOST,
];

static PODMAN_DOC: ModuleDoc = ModuleDoc {
    name: "podman_image",
    aliases: &["containers.podman.podman_image"],
    short: "Build, load, pull, tag or remove podman images",
    description: DESCRIPTION,
    free_form: false,
    options: PODMAN_OPTIONS,
    examples: "- podman_image:\n    name: localhost/web\n    tag: \"1.2\"\n    path: /srv/build/web\n    build:\n      file: Containerfile\n      args: { VERSION: \"1.2\" }\n",
    returns: RETURNS,
    controller_only: false,
};

static DOCKER_DOC: ModuleDoc = ModuleDoc {
    name: "docker_image",
    aliases: &["community.docker.docker_image"],
    short: "Build, load, pull, tag or remove docker images",
    description: DESCRIPTION,
    free_form: false,
    options: DOCKER_OPTIONS,
    examples:
        "- docker_image:\n    name: web\n    tag: \"1.2\"\n    source: build\n    build: { path: /srv/build/web }\n",
    returns: RETURNS,
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    name: String,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    build: Option<Value>,
    #[serde(default)]
    load_path: Option<String>,
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    force: Option<bool>,
    #[serde(default)]
    force_source: Option<bool>,
    #[serde(default)]
    force_absent: Option<bool>,
    #[serde(default)]
    pull: Option<bool>,
    #[serde(default)]
    push: Option<bool>,
    #[serde(default)]
    executable: Option<String>,
    #[serde(default)]
    docker_host: Option<String>,
}

pub struct ImageModule {
    pub flavor: Flavor,
}

/// `name` with `tag` unless the name has a tag or digest already.
pub fn image_ref(name: &str, tag: Option<&str>) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') {
        name.to_string()
    } else {
        format!("{name}:{}", tag.filter(|t| !t.is_empty()).unwrap_or("latest"))
    }
}

/// What a build takes from the `build` mapping.
struct Build {
    path: Option<String>,
    file: Option<String>,
    args: Vec<(String, String)>,
    target: Option<String>,
    no_cache: bool,
    pull: bool,
}

fn parse_build(module: &'static str, v: Option<&Value>) -> Result<Build, ModuleError> {
    let mut b = Build {
        path: None,
        file: None,
        args: Vec::new(),
        target: None,
        no_cache: false,
        pull: false,
    };
    let Some(Value::Object(m)) = v else {
        return match v {
            None | Some(Value::Null) => Ok(b),
            Some(other) => Err(ModuleError::Args(format!(
                "{module}: build must be a mapping, got {other}"
            ))),
        };
    };
    let text = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
    let truth = |v: &Value| crate::modules::values::value_bool(v).unwrap_or(false);
    for (k, v) in m {
        if v.is_null() {
            continue;
        }
        match k.as_str() {
            "path" => b.path = Some(text(v)),
            "file" | "dockerfile" => b.file = Some(text(v)),
            "container_file" => {
                return Err(ModuleError::Args(format!(
                    "{module}: build.container_file (the Containerfile's text inline) is not supported by \
                     rigger: put the file in the context directory and name it in build.file"
                )))
            }
            "args" => b.args = string_map(module, "build.args", v)?,
            "target" => b.target = Some(text(v)),
            "nocache" => b.no_cache = truth(v),
            "cache" => b.no_cache = !truth(v),
            "pull" => b.pull = truth(v),
            // The engines' defaults already: intermediate containers are removed.
            "rm" | "force_rm" => {}
            other => {
                return Err(ModuleError::Args(format!(
                    "{module}: build.{other} is not supported by rigger (supported: path, file, dockerfile, \
                     args, target, nocache, cache, pull, rm, force_rm)"
                )))
            }
        }
    }
    Ok(b)
}

#[async_trait]
impl Module for ImageModule {
    fn doc(&self) -> &'static ModuleDoc {
        match self.flavor {
            Flavor::Podman => &PODMAN_DOC,
            Flavor::Docker => &DOCKER_DOC,
        }
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let doc = self.doc();
        let module = doc.name;
        let p: Params = parse_params(doc, args)?;
        if p.push.unwrap_or(false) {
            return Err(ModuleError::Args(format!(
                "{module}: push is not supported by rigger (no registry access from the module)"
            )));
        }
        let engine =
            Engine::new(ctx, self.flavor, p.executable.as_deref(), module).with_docker_host(p.docker_host.as_deref());
        let reference = image_ref(&p.name, p.tag.as_deref());
        let current = engine.inspect("image", &reference).await?;
        let id = |v: &Option<Value>| {
            v.as_ref()
                .and_then(|i| i.get("Id"))
                .and_then(Value::as_str)
                .map(super::engine::strip_sha)
        };
        let cur_id = id(&current);
        let describe = |what: &str| format!("image: {reference} ({what})\n");
        let diff = |before: String, after: String| Diff {
            before_header: format!("image {reference}"),
            after_header: format!("image {reference}"),
            before,
            after,
        };
        let before = match &cur_id {
            Some(i) => describe(&i[..i.len().min(12)]),
            None => describe("absent"),
        };
        let mut steps = EngineSteps::new(&engine);
        let mut actions: Vec<&str> = Vec::new();

        if p.state.as_deref() == Some("absent") {
            if cur_id.is_none() {
                return Ok(Plan::Done(ModuleOutcome::ok().with("image", Value::Object(Map::new()))));
            }
            let mut rmi = strings(&["rmi"]);
            if p.force.or(p.force_absent).unwrap_or(false) {
                rmi.push("-f".into());
            }
            rmi.push(reference.clone());
            steps.push(rmi);
            let out = ModuleOutcome::ok()
                .with_diff(diff(before, describe("absent")))
                .with("image", current.unwrap_or(Value::Null))
                .with("actions", vec!["removed"]);
            return Ok(Plan::change(out, steps));
        }

        let build = parse_build(module, p.build.as_ref())?;
        let context = p.path.clone().or(build.path.clone());
        let source = match p.source.as_deref() {
            Some(s) => s,
            None if context.is_some() || p.state.as_deref() == Some("build") => "build",
            None if p.load_path.is_some() => "load",
            None if p.pull.unwrap_or(true) => "pull",
            None => "local",
        };
        let force = p.force.or(p.force_source).unwrap_or(false);
        let mut after_what = cur_id.as_deref().map(|i| i[..i.len().min(12)].to_string());
        if cur_id.is_none() || force {
            match source {
                "build" => {
                    let Some(dir) = &context else {
                        return Err(ModuleError::Args(format!(
                            "{module}: building {reference} needs a context directory (`{}`)",
                            if self.flavor == Flavor::Podman {
                                "path"
                            } else {
                                "build.path"
                            }
                        )));
                    };
                    let mut a = strings(&["build", "-t", &reference]);
                    if let Some(f) = &build.file {
                        // A relative file is relative to the context, as the collections take it.
                        let f = if f.starts_with('/') {
                            f.clone()
                        } else {
                            format!("{}/{f}", dir.trim_end_matches('/'))
                        };
                        a.extend(["-f".into(), f]);
                    }
                    for (k, v) in &build.args {
                        a.extend(["--build-arg".into(), format!("{k}={v}")]);
                    }
                    if let Some(t) = &build.target {
                        a.extend(["--target".into(), t.clone()]);
                    }
                    if build.no_cache {
                        a.push("--no-cache".into());
                    }
                    if build.pull {
                        a.push("--pull".into());
                    }
                    a.push("--".into());
                    a.push(dir.clone());
                    steps.push(a);
                    actions.push("built");
                    after_what = Some(format!("built from {dir}"));
                }
                "load" => {
                    let Some(f) = &p.load_path else {
                        return Err(ModuleError::Args(format!("{module}: source=load needs `load_path`")));
                    };
                    steps.push(strings(&["load", "-i", f]));
                    actions.push("loaded");
                    after_what = Some(format!("loaded from {f}"));
                }
                "pull" => {
                    steps.push(strings(&["pull", &reference]));
                    actions.push("pulled");
                    after_what = Some("pulled".into());
                }
                _ => {
                    if cur_id.is_none() {
                        return Err(ModuleError::Failed(format!(
                            "{module}: image {reference} is not on {} (source=local)",
                            ctx.host
                        )));
                    }
                }
            }
        }
        let mut after = describe(after_what.as_deref().unwrap_or("absent"));
        if let Some(repo) = &p.repository {
            let target = image_ref(repo, p.tag.as_deref());
            let target_id = engine.image_id(&target).await?;
            if !actions.is_empty() || target_id.is_none() || target_id != cur_id {
                steps.push(strings(&["tag", &reference, &target]));
                actions.push("tagged");
                after.push_str(&format!("tagged: {target}\n"));
            }
        }
        let out = ModuleOutcome::ok()
            .with("image", current.unwrap_or_else(|| Value::Object(Map::new())))
            .with("actions", actions);
        if steps.is_empty() {
            return Ok(Plan::Done(out));
        }
        steps.after = Some(("image", "image", reference.clone()));
        Ok(Plan::change(out.with_diff(diff(before, after)), steps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(image_ref("web", None), "web:latest");
        assert_eq!(image_ref("web", Some("1.2")), "web:1.2");
        assert_eq!(image_ref("localhost:5000/web", Some("2")), "localhost:5000/web:2");
        assert_eq!(image_ref("web:3", Some("1.2")), "web:3");
        assert_eq!(image_ref("web@sha256:ab", None), "web@sha256:ab");
    }
}
