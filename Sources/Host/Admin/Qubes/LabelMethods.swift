// admin.label.{List,Get,Index,Create,Remove}.
import Domains

extension QubesAPI {
    func labelMethods() -> [AdminMethod] {
        [
            AdminMethod("admin.label.List", argument: .none, destination: .adminVM, scope: .global, access: .read) { [self] _ in
                QubesAPI.lines(store.snapshot().allLabels.map(\.name))
            },
            AdminMethod("admin.label.Get", argument: .required, destination: .adminVM, scope: .global, access: .read) { [self] c throws(AdminError) in
                Array(try label(c.argument).color.utf8)
            },
            AdminMethod("admin.label.Index", argument: .required, destination: .adminVM, scope: .global, access: .read) { [self] c throws(AdminError) in
                Array(String(try label(c.argument).index).utf8)
            },
            AdminMethod("admin.label.Create", argument: .required, payload: .required, destination: .adminVM, scope: .global, access: .write) { [self] c throws(AdminError) in
                guard !c.argument.allSatisfy(\.isNumber) else { throw .protocolError("a label name must not be a number") }
                let color = try QubesAPI.text(c.payload).trimmingSpaces
                if store.snapshot().allLabels.contains(where: { $0.name == c.argument }) { throw .value("label already exists") }
                _ = try domain { () throws(DomainError) in try store.createLabel(c.argument, color: color) }
                return []
            },
            AdminMethod("admin.label.Remove", argument: .required, destination: .adminVM, scope: .global, access: .write) { [self] c throws(AdminError) in
                _ = try label(c.argument)
                do throws(DomainError) { try store.removeLabel(c.argument) } catch {
                    throw AdminError(error.qubesType == "QubesException" ? "QubesException" : error.qubesType, error.message)
                }
                return []
            },
        ]
    }

    /// qubesd answers an unknown label with QubesValueError.
    private func label(_ name: String) throws(AdminError) -> Label {
        do throws(DomainError) { return try store.snapshot().label(name) } catch {
            throw AdminError("QubesValueError", error.message)
        }
    }
}
