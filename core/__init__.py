"""rmorch's neutral core: the vocabulary every layer shares and that imports nothing else of the project.

errors (UserError, SpecError, DataError), the two Arrow schemas (items, results), the presented orders of judges
(permutations). Suites and actors import this package and nothing of the driver; the driver imports all three.
"""
