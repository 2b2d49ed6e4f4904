//! Union-find over account indices: the clusters.

/// Disjoint sets with path halving and union by index: the root of a set is
/// always its smallest index, so a cluster's identity (its first member)
/// does not depend on the order in which its links arrived.
#[derive(Clone, Debug, Default)]
pub(crate) struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    /// Makes sure indices `0..n` exist (new ones as singletons).
    pub(crate) fn grow(&mut self, n: usize) {
        while self.parent.len() < n {
            self.parent.push(self.parent.len() as u32);
            self.size.push(1);
        }
    }

    pub(crate) fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            let gp = self.parent[p as usize];
            self.parent[x as usize] = gp;
            x = gp;
        }
        x
    }

    /// The root without modifying the structure.
    pub(crate) fn root(&self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            x = self.parent[x as usize];
        }
        x
    }

    /// Joins the sets of `a` and `b`; returns whether they were apart.
    pub(crate) fn union(&mut self, a: u32, b: u32) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return false;
        }
        let (keep, join) = if ra < rb { (ra, rb) } else { (rb, ra) };
        self.parent[join as usize] = keep;
        self.size[keep as usize] += self.size[join as usize];
        true
    }

    pub(crate) fn size_of(&self, x: u32) -> u32 {
        self.size[self.root(x) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unions_join_and_roots_are_the_smallest_member() {
        let mut uf = UnionFind::default();
        uf.grow(10);
        assert!(uf.union(7, 3));
        assert!(uf.union(3, 9));
        assert!(!uf.union(9, 7));
        assert!(uf.union(5, 9));
        assert_eq!(uf.find(9), 3);
        assert_eq!(uf.size_of(5), 4);
        assert_eq!(uf.size_of(0), 1);
    }
}
