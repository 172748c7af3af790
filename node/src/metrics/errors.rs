//! `bzzz_errors_total{component}`: the one metric every subsystem counts into.
//!
//! The family is registered once ([`ErrorFamily::register`]); each subsystem takes a typed view
//! of it with its own component enum ([`ErrorFamily::scoped`]), which pre-creates that
//! subsystem's series. So the family holds exactly the components some subsystem can count, and
//! this module names none of them.

use std::marker::PhantomData;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::LabelValue;

/// Label set of `bzzz_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabel {
    component: &'static str,
}

/// The registered `bzzz_errors_total` family. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ErrorFamily(Family<ComponentLabel, Counter>);

impl ErrorFamily {
    /// Registers `bzzz_errors_total` in `registry`, with no series yet.
    pub fn register(registry: &mut Registry) -> Self {
        let family = Family::default();
        registry.register("bzzz_errors", "Errors by component", family.clone());
        ErrorFamily(family)
    }

    /// A view counting the components of `E`; pre-creates one series per value of `E`.
    pub fn scoped<E: LabelValue>(&self) -> Errors<E> {
        super::precreate(&self.0, E::ALL.iter().map(|c| ComponentLabel { component: c.as_str() }));
        Errors {
            family: self.0.clone(),
            _component: PhantomData,
        }
    }
}

/// A subsystem's view of `bzzz_errors_total`: it can count only its own components.
#[derive(Debug)]
pub struct Errors<E> {
    family: Family<ComponentLabel, Counter>,
    _component: PhantomData<fn(E)>,
}

impl<E> Clone for Errors<E> {
    fn clone(&self) -> Self {
        Errors {
            family: self.family.clone(),
            _component: PhantomData,
        }
    }
}

impl<E: LabelValue> Errors<E> {
    /// Counts one error of `component`.
    pub fn inc(&self, component: E) {
        self.family
            .get_or_create(&ComponentLabel {
                component: component.as_str(),
            })
            .inc();
    }

    /// Counts `by` errors of `component`.
    pub fn inc_by(&self, component: E, by: u64) {
        self.family
            .get_or_create(&ComponentLabel {
                component: component.as_str(),
            })
            .inc_by(by);
    }

    /// The count so far for `component`.
    pub fn get(&self, component: E) -> u64 {
        self.family
            .get_or_create(&ComponentLabel {
                component: component.as_str(),
            })
            .get()
    }
}
