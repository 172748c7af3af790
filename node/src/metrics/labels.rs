//! Typed label values: a closed enum per label, so a metric can only carry the values it was
//! pre-created with.
//!
//! prometheus-client's `#[derive(EncodeLabelValue)]` writes the variant's identifier as the value
//! (`PublishFailed`), while bzzz's contract values are snake_case or paths (`publish_failed`,
//! `p2p-connectivity`, `bzzz/health/v1`). [`label_enum!`] declares the enum with its exposed
//! text instead, and gives it [`LabelValue`]: every value (`ALL`, for pre-creating series) and
//! `as_str()`.

/// A closed set of label values.
pub trait LabelValue: Copy + Eq + std::hash::Hash + std::fmt::Debug + Send + Sync + 'static {
    /// Every value, in declaration order: the series a metric labelled with it pre-creates.
    const ALL: &'static [Self];

    /// The value as exposed.
    fn as_str(self) -> &'static str;
}

/// Declares a label enum: `Variant => "exposed text"` per value. The enum gets [`LabelValue`]
/// and `EncodeLabelValue` (which writes the exposed text).
///
/// ```text
/// label_enum! {
///     /// `outcome` of a DHT operation.
///     pub enum DhtOutcome {
///         /// It completed.
///         Success => "success",
///         /// It failed or timed out.
///         Failure => "failure",
///     }
/// }
/// ```
macro_rules! label_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $value:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $crate::metrics::LabelValue for $name {
            const ALL: &'static [Self] = &[$($name::$variant),+];

            fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $value, )+
                }
            }
        }

        impl ::prometheus_client::encoding::EncodeLabelValue for $name {
            fn encode(
                &self,
                encoder: &mut ::prometheus_client::encoding::LabelValueEncoder<'_>,
            ) -> ::std::fmt::Result {
                ::std::fmt::Write::write_str(encoder, $crate::metrics::LabelValue::as_str(*self))
            }
        }
    };
}

pub(crate) use label_enum;

#[cfg(test)]
mod tests {
    use super::*;

    label_enum! {
        /// A test label.
        enum Sample {
            /// One.
            One => "one",
            /// Two words.
            TwoWords => "two_words",
        }
    }

    /// `ALL` lists every variant in order, and each encodes as its declared text.
    #[test]
    fn values_and_text() {
        assert_eq!(Sample::ALL, &[Sample::One, Sample::TwoWords]);
        assert_eq!(Sample::TwoWords.as_str(), "two_words");
    }
}
