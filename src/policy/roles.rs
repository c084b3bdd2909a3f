//! `[roles]`: role -> permissions with inheritance, compiled once so a request only takes unions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use http::HeaderValue;

/// Every role's effective roles (itself and all it inherits) and their permissions.
#[derive(Debug, Default, Clone)]
pub struct RoleGraph {
    expanded: BTreeMap<String, Expanded>,
}

#[derive(Debug, Default, Clone)]
struct Expanded {
    roles: BTreeSet<String>,
    permissions: BTreeSet<String>,
}

/// A caller's effective roles and permissions, sorted (the order identity headers use).
#[derive(Debug, Default, Clone)]
pub struct Grants {
    pub roles: BTreeSet<String>,
    pub permissions: BTreeSet<String>,
    /// The comma-joined forms the identity headers carry, made on first use: an API key's
    /// grants (and a cached token's) are shared by all of its requests, so they are joined once.
    joined: OnceLock<Joined>,
}

#[derive(Debug, Clone)]
struct Joined {
    roles: String,
    permissions: String,
    /// The same as header values (`None` if one cannot be: a control character in a name).
    roles_value: Option<HeaderValue>,
    permissions_value: Option<HeaderValue>,
}

impl PartialEq for Grants {
    fn eq(&self, other: &Self) -> bool {
        self.roles == other.roles && self.permissions == other.permissions
    }
}

impl Eq for Grants {}

impl Grants {
    pub fn new(roles: BTreeSet<String>, permissions: BTreeSet<String>) -> Self {
        Grants {
            roles,
            permissions,
            joined: OnceLock::new(),
        }
    }

    /// The effective roles, sorted and comma-separated.
    pub fn roles_joined(&self) -> &str {
        &self.joined().roles
    }

    /// The permissions, sorted and comma-separated.
    pub fn permissions_joined(&self) -> &str {
        &self.joined().permissions
    }

    /// [`Self::roles_joined`] as a header value.
    pub fn roles_value(&self) -> Option<&HeaderValue> {
        self.joined().roles_value.as_ref()
    }

    /// [`Self::permissions_joined`] as a header value.
    pub fn permissions_value(&self) -> Option<&HeaderValue> {
        self.joined().permissions_value.as_ref()
    }

    fn joined(&self) -> &Joined {
        let join =
            |set: &BTreeSet<String>| set.iter().map(String::as_str).collect::<Vec<_>>().join(",");
        self.joined.get_or_init(|| {
            let (roles, permissions) = (join(&self.roles), join(&self.permissions));
            Joined {
                roles_value: HeaderValue::from_str(&roles).ok(),
                permissions_value: HeaderValue::from_str(&permissions).ok(),
                roles,
                permissions,
            }
        })
    }

    pub fn has_permission(&self, p: &str) -> bool {
        self.permissions.contains("*") || self.permissions.contains(p)
    }
    pub fn has_any_role(&self, roles: &[String]) -> bool {
        roles.iter().any(|r| self.roles.contains(r))
    }
}

impl RoleGraph {
    /// Compiles `role -> (inherits, permissions)`. Errors name the role: an unknown parent or a
    /// cycle (with its members).
    pub fn build(
        defs: &BTreeMap<String, (Vec<String>, Vec<String>)>,
    ) -> Result<Self, Vec<(String, String)>> {
        let mut errors = Vec::new();
        for (name, (inherits, _)) in defs {
            for parent in inherits {
                if !defs.contains_key(parent) {
                    errors.push((name.clone(), format!("inherits unknown role `{parent}`")));
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut expanded = BTreeMap::new();
        for name in defs.keys() {
            // Depth-first walk; meeting `name` again means a cycle through it.
            let mut seen = BTreeSet::new();
            let mut stack: Vec<&String> = defs[name].0.iter().collect();
            let mut perms: BTreeSet<String> = defs[name].1.iter().cloned().collect();
            let mut cyclic = false;
            while let Some(r) = stack.pop() {
                if r == name {
                    cyclic = true;
                    break;
                }
                if seen.insert(r.clone()) {
                    perms.extend(defs[r].1.iter().cloned());
                    stack.extend(defs[r].0.iter());
                }
            }
            if cyclic {
                errors.push((
                    name.clone(),
                    format!("role `{name}` inherits itself (a cycle)"),
                ));
                continue;
            }
            seen.insert(name.clone());
            expanded.insert(
                name.clone(),
                Expanded {
                    roles: seen,
                    permissions: perms,
                },
            );
        }
        if errors.is_empty() {
            Ok(RoleGraph { expanded })
        } else {
            Err(errors)
        }
    }

    /// Every role of `[roles]`.
    pub(crate) fn names(&self) -> std::collections::HashSet<String> {
        self.expanded.keys().cloned().collect()
    }

    pub fn is_known(&self, role: &str) -> bool {
        self.expanded.contains_key(role)
    }

    /// Effective roles (assigned plus inherited; unknown assigned roles kept as they are) and
    /// permissions (the roles' plus the credential's own).
    pub fn grants<'a>(
        &self,
        assigned: impl IntoIterator<Item = &'a String>,
        own_permissions: impl IntoIterator<Item = &'a String>,
    ) -> Grants {
        let mut g = Grants::default();
        for role in assigned {
            match self.expanded.get(role) {
                Some(e) => {
                    g.roles.extend(e.roles.iter().cloned());
                    g.permissions.extend(e.permissions.iter().cloned());
                }
                None => {
                    g.roles.insert(role.clone());
                }
            }
        }
        g.permissions.extend(own_permissions.into_iter().cloned());
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs(items: &[(&str, &[&str], &[&str])]) -> BTreeMap<String, (Vec<String>, Vec<String>)> {
        items
            .iter()
            .map(|(n, i, p)| {
                (
                    n.to_string(),
                    (
                        i.iter().map(|s| s.to_string()).collect(),
                        p.iter().map(|s| s.to_string()).collect(),
                    ),
                )
            })
            .collect()
    }

    #[test]
    fn inheritance_is_transitive() {
        let g = RoleGraph::build(&defs(&[
            ("viewer", &[], &["orders:read"]),
            ("user", &["viewer"], &["orders:write"]),
            ("admin", &["user"], &["*"]),
        ]))
        .unwrap();
        let admin = g.grants(&["admin".to_string()], &[]);
        assert_eq!(
            admin.roles.iter().collect::<Vec<_>>(),
            ["admin", "user", "viewer"]
        );
        assert!(admin.has_permission("anything"));
        let user = g.grants(&["user".to_string()], &["extra".to_string()]);
        assert!(user.has_permission("orders:read") && user.has_permission("extra"));
        assert!(!user.has_permission("orders:delete"));
        assert_eq!(user.roles_joined(), "user,viewer");
        assert_eq!(user.permissions_joined(), "extra,orders:read,orders:write");
    }

    #[test]
    fn cycles_and_unknown_parents_are_errors() {
        let e = RoleGraph::build(&defs(&[("a", &["b"], &[]), ("b", &["a"], &[])])).unwrap_err();
        assert_eq!(e.len(), 2);
        let e = RoleGraph::build(&defs(&[("a", &["ghost"], &[])])).unwrap_err();
        assert!(e[0].1.contains("ghost"));
    }
}
