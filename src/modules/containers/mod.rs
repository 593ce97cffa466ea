//! Container modules: podman and docker over SSH.
//!
//! rigger drives the engine's own command line on the target host over the
//! task's connection (`podman ...` / `docker ...`, every argument quoted):
//! no engine API socket is opened from the controller. Every module reads
//! the object's `inspect` JSON first, compares it with the task and plans
//! the engine commands that close the difference ([`engine::EngineSteps`]),
//! which the executor runs unless in check mode.
//!
//! Modules (each under its `containers.podman.` / `community.docker.` name
//! too): `podman_container`, `docker_container`, `podman_image`,
//! `docker_image`, `podman_network`, `docker_network`, `podman_volume`,
//! `docker_volume`; `kube_play` (`containers.podman.podman_play`);
//! `container_service` (a compose-like group with replicas and rolling updates);
//! `container_facts`, `podman_container_info`, `docker_container_info`.

pub mod container;
pub mod engine;
pub mod image;
pub mod info;
pub mod kube;
pub mod network;
pub mod service;
pub mod spec;

use std::sync::Arc;

use crate::modules::Registry;
use engine::Flavor;

pub fn register(r: &mut Registry) {
    for flavor in [Flavor::Podman, Flavor::Docker] {
        r.add(Arc::new(container::ContainerModule { flavor }));
        r.add(Arc::new(image::ImageModule { flavor }));
        r.add(Arc::new(network::NetworkModule { flavor }));
        r.add(Arc::new(network::VolumeModule { flavor }));
        r.add(Arc::new(info::InfoModule { flavor }));
    }
    r.add(Arc::new(info::FactsModule));
    r.add(Arc::new(kube::KubePlayModule));
    r.add(Arc::new(service::ServiceModule));
}
