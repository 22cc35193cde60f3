"""The engine: one page path (decode → preprocess → detect → crop → orient → recognise → order) and its
stages, each a small typed function over numpy arrays, safe to call from several threads."""
