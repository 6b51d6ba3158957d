"""Pure statistics for pairwise evaluation: rankings and inter-rater agreement. No Django here."""
