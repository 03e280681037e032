"""The room's model server: one copy of the model for every learner's notebook and the app, on Ray Serve.

    make serve                               # 127.0.0.1:8000, nano on a CPU, the real model on CUDA
    make serve SERVE_IP=0.0.0.0              # a room: every request needs the printed room code
    python -m kandinsky_lab.serve --help     # replicas, GPUs per replica, batch limits, …

    kit = kl.load("http://10.0.0.5:8000", token="…")     # in a learner's notebook: a thin client

replica.py holds the model and batches visitors' decoder rows (`@serve.batch`); room.py is the front
door (room code, limits, turns, streaming, stop); server.py starts Ray with bounded resources,
deploys both, and shuts everything down again.
"""
