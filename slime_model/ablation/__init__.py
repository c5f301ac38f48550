"""Ablations of the paper's claims in miniature: train the tiny model under several arms, score, summarize."""
