"""cardflow on Dask: fold a Bag of D1 bodies into one state per card, across a cluster.

Needs the ``dask`` extra (``pip install 'cardflow[dask]'``); ``import cardflow`` never
imports it. The fold is a join, so it runs as Dask's ``foldby`` would: each partition
of bodies is folded on its own, then the partial states are shuffled by card id and
merged, one output partition per range of card-id hashes. States travel between
workers in the state format (``encode_state``), never as pickled objects.
"""

from ._bag import DaskFold, Rejected, fold, fold_with_rejects, read_bodies

__all__ = ["DaskFold", "Rejected", "fold", "fold_with_rejects", "read_bodies"]
