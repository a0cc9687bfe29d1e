"""`make demo`: the whole product on MovieLens 100K, on the local stack, end to end."""
