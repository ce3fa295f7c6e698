//! (placeholder: policy config types are owned by the sql/policy work)
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SafetyConfig {
    pub enabled: bool,
}
impl Default for SafetyConfig {
    fn default() -> Self {
        SafetyConfig { enabled: true }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitConfig {
    pub enabled: bool,
}
impl Default for LimitConfig {
    fn default() -> Self {
        LimitConfig { enabled: true }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    pub name: String,
}
