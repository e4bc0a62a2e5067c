"""A prepared file sent through a real pipe as a reader child sends it, and received as the
daemon receives it (``isolate._send`` / ``isolate._receive``)."""

from __future__ import annotations

import multiprocessing as mp
import threading

from complaint_core import isolate
from complaint_core.store.codec import Prepared


def through_the_pipe(prepared: Prepared) -> isolate.Packed:
    theirs, ours = mp.Pipe()
    sending = threading.Thread(target=isolate._send, args=(theirs, ("ok", prepared)))
    sending.start()
    answer = isolate._receive(ours)
    sending.join()
    assert isinstance(answer[1], isolate.Packed)
    return answer[1]
