package spec

// ClosestWord returns the candidate nearest to word by edit distance, or "" when none is
// close enough to be a plausible typo (more than a third of the word changed). Words
// longer than any name are no typo, and their distances would cost too much to compute.
func ClosestWord(word string, candidates []string) string {
	if len(word) > MaxObjectNameLength {
		return ""
	}
	best, bestDist := "", len(word)/3+1
	for _, c := range candidates {
		if d := editDistance(word, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
