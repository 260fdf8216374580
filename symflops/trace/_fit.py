"""placeholder replaced below"""
def fit(*a, **k):
    raise NotImplementedError
