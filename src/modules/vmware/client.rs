//! A vSphere session: login (the session cookie), calls, the property
//! collector for reads, inventory lookups by name through container views,
//! tasks waited for (their faults reported), logout.

use std::collections::HashMap;
use std::time::Duration;

use super::soap::{envelope, parse_answer, MoRef, Node, SoapError, Transport, Trust, Xml};

/// Where and as whom to log in.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: String,
    pub trust: Trust,
}

/// Why a vSphere operation failed, said for the user.
#[derive(Debug, thiserror::Error)]
pub enum VmwareError {
    #[error(transparent)]
    Soap(#[from] SoapError),
    #[error("{server} refused the login of user `{user}`: {message}")]
    Login {
        server: String,
        user: String,
        message: String,
    },
    #[error("{what} failed: {message} ({fault})")]
    Task {
        what: String,
        fault: String,
        message: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Protocol(String),
}

/// The references of the service content that rigger uses.
#[derive(Debug, Clone)]
pub struct ServiceContent {
    pub root_folder: MoRef,
    pub property_collector: MoRef,
    pub view_manager: MoRef,
    pub session_manager: MoRef,
    pub about: String,
}

/// A logged-in session; [`Session::logout`] ends it.
pub struct Session {
    transport: Transport,
    cookie: Option<String>,
    pub content: ServiceContent,
    server: String,
}

/// Properties of one object, by path (`name`, `config`, `runtime.powerState`).
pub type Props = HashMap<String, Node>;

impl Session {
    /// Connect, read the service content and log in.
    pub async fn login(ep: &Endpoint) -> Result<Session, VmwareError> {
        let transport = Transport::new(&ep.host, ep.port, ep.trust.clone(), Duration::from_secs(120))?;
        let server = format!("https://{}/sdk", transport.addr());
        let si = MoRef::new("ServiceInstance", "ServiceInstance");
        let mut s = Session {
            transport,
            cookie: None,
            content: ServiceContent {
                root_folder: si.clone(),
                property_collector: si.clone(),
                view_manager: si.clone(),
                session_manager: si.clone(),
                about: String::new(),
            },
            server,
        };
        let sc = s.call("RetrieveServiceContent", &si, "").await?;
        let rv = sc
            .child("returnval")
            .ok_or_else(|| VmwareError::Protocol("RetrieveServiceContent: no returnval".into()))?;
        let r = |name: &str| {
            rv.child(name)
                .and_then(Node::as_moref)
                .ok_or_else(|| VmwareError::Protocol(format!("the service content has no {name}")))
        };
        s.content = ServiceContent {
            root_folder: r("rootFolder")?,
            property_collector: r("propertyCollector")?,
            view_manager: r("viewManager")?,
            session_manager: r("sessionManager")?,
            about: rv.get("about/fullName").unwrap_or("").to_string(),
        };
        let mut body = Xml::new();
        body.text("userName", &ep.username).text("password", &ep.password);
        let sm = s.content.session_manager.clone();
        match s.call("Login", &sm, &body.into_string()).await {
            Ok(_) => Ok(s),
            Err(VmwareError::Soap(SoapError::Fault { fault, message, .. })) => Err(VmwareError::Login {
                server: s.server.clone(),
                user: ep.username.clone(),
                message: format!("{message} ({fault})"),
            }),
            Err(e) => Err(e),
        }
    }

    /// End the session (a failure is the caller's to report).
    pub async fn logout(mut self) -> Result<(), VmwareError> {
        let sm = self.content.session_manager.clone();
        self.call("Logout", &sm, "").await.map(|_| ())
    }

    /// Call `method` on `this` with `body` (already escaped XML); the answer element.
    pub async fn call(&mut self, method: &str, this: &MoRef, body: &str) -> Result<Node, VmwareError> {
        let env = envelope(method, this, body);
        let (status, cookies, text) = self.transport.post(self.cookie.as_deref(), &env).await?;
        for c in cookies {
            // `vmware_soap_session="..."; Path=/; HttpOnly`: the pair only.
            let pair = c.split(';').next().unwrap_or("").trim();
            if pair.starts_with("vmware_soap_session=") {
                self.cookie = Some(pair.to_string());
            }
        }
        Ok(parse_answer(method, status, &text)?)
    }

    /// The properties `paths` of `obj`. A property that is unset is absent.
    pub async fn props(&mut self, obj: &MoRef, paths: &[&str]) -> Result<Props, VmwareError> {
        let mut x = Xml::new();
        x.open("specSet").open("propSet").text("type", &obj.kind);
        for p in paths {
            x.text("pathSet", p);
        }
        x.close("propSet")
            .open("objectSet")
            .moref("obj", obj)
            .close("objectSet")
            .close("specSet");
        x.open("options").close("options");
        let pc = self.content.property_collector.clone();
        let ans = self.call("RetrievePropertiesEx", &pc, &x.into_string()).await?;
        let mut out = Props::new();
        if let Some(o) = ans.path("returnval/objects") {
            collect_props(o, &mut out);
        }
        Ok(out)
    }

    /// Every object of type `kind` under `container` (recursively), with
    /// the properties `paths`.
    pub async fn list(
        &mut self,
        container: &MoRef,
        kind: &str,
        paths: &[&str],
    ) -> Result<Vec<(MoRef, Props)>, VmwareError> {
        let mut x = Xml::new();
        x.moref("container", container)
            .text("type", kind)
            .val("recursive", true);
        let vm = self.content.view_manager.clone();
        let ans = self.call("CreateContainerView", &vm, &x.into_string()).await?;
        let view = ans
            .child("returnval")
            .and_then(Node::as_moref)
            .ok_or_else(|| VmwareError::Protocol("CreateContainerView: no view".into()))?;
        let res = self.list_view(&view, kind, paths).await;
        // The view is the session's; a failure to destroy it ends with the session.
        let _ = self.call("DestroyView", &view, "").await;
        res
    }

    async fn list_view(
        &mut self,
        view: &MoRef,
        kind: &str,
        paths: &[&str],
    ) -> Result<Vec<(MoRef, Props)>, VmwareError> {
        let mut x = Xml::new();
        x.open("specSet").open("propSet").text("type", kind);
        for p in paths {
            x.text("pathSet", p);
        }
        x.close("propSet")
            .open("objectSet")
            .moref("obj", view)
            .val("skip", true)
            .open_typed("selectSet", "TraversalSpec")
            .text("name", "view")
            .text("type", "ContainerView")
            .text("path", "view")
            .val("skip", false)
            .close("selectSet")
            .close("objectSet")
            .close("specSet");
        x.open("options").close("options");
        let pc = self.content.property_collector.clone();
        let mut ans = self.call("RetrievePropertiesEx", &pc, &x.into_string()).await?;
        let mut out = Vec::new();
        while let Some(rv) = ans.child("returnval") {
            for o in rv.children_named("objects") {
                let Some(obj) = o.child("obj").and_then(Node::as_moref) else {
                    continue;
                };
                let mut props = Props::new();
                collect_props(o, &mut props);
                out.push((obj, props));
            }
            let Some(token) = rv.get("token").map(str::to_string) else {
                break;
            };
            let mut x = Xml::new();
            x.text("token", &token);
            ans = self.call("ContinueRetrievePropertiesEx", &pc, &x.into_string()).await?;
        }
        Ok(out)
    }

    /// The objects of type `kind` named `name` under `container`.
    pub async fn find(&mut self, container: &MoRef, kind: &str, name: &str) -> Result<Vec<MoRef>, VmwareError> {
        Ok(self
            .list(container, kind, &["name"])
            .await?
            .into_iter()
            .filter(|(_, p)| p.get("name").is_some_and(|n| n.text == name))
            .map(|(r, _)| r)
            .collect())
    }

    /// Wait for `task` to end; its result on success, its fault as the error.
    pub async fn wait_task(&mut self, task: &MoRef, what: &str) -> Result<Option<Node>, VmwareError> {
        let mut delay = Duration::from_millis(50);
        loop {
            let p = self.props(task, &["info"]).await?;
            let info = p
                .get("info")
                .ok_or_else(|| VmwareError::Protocol(format!("{what}: the task has no info")))?;
            match info.get("state").unwrap_or("") {
                "success" => return Ok(info.child("result").cloned()),
                "error" => {
                    let err = info.child("error");
                    let fault = err
                        .and_then(|e| e.child("fault"))
                        .and_then(|f| f.xsi_type.clone())
                        .unwrap_or_else(|| "fault".into());
                    let message = err
                        .and_then(|e| e.get("localizedMessage"))
                        .filter(|m| !m.trim().is_empty())
                        .unwrap_or("no message")
                        .to_string();
                    return Err(VmwareError::Task {
                        what: what.to_string(),
                        fault,
                        message,
                    });
                }
                _ => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Call a `*_Task` method and wait for it.
    pub async fn run_task(
        &mut self,
        method: &str,
        this: &MoRef,
        body: &str,
        what: &str,
    ) -> Result<Option<Node>, VmwareError> {
        let ans = self.call(method, this, body).await?;
        let task = ans
            .child("returnval")
            .and_then(Node::as_moref)
            .ok_or_else(|| VmwareError::Protocol(format!("{method}: no task in the answer")))?;
        self.wait_task(&task, what).await
    }

    /// `https://host:port/sdk`, for messages.
    pub fn server(&self) -> &str {
        &self.server
    }
}

fn collect_props(objects: &Node, out: &mut Props) {
    for ps in objects.children_named("propSet") {
        let (Some(name), Some(val)) = (ps.get("name"), ps.child("val")) else {
            continue;
        };
        out.insert(name.to_string(), val.clone());
    }
}
